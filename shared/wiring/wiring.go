// Package wiring builds, once per process, what every entry point shares: the logger, the
// LivePerson client on one keep-alive transport, the credentials source, the SSM cache
// tier and the session manager. Each main (functions/*, the CLI, the local API) calls
// Build at init and builds from these parts only the services it serves, so a binary
// links what it uses and nothing more.
package wiring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/paramstore"
	"github.com/lpmtls/lpmtls/shared/secrets"
	"github.com/lpmtls/lpmtls/shared/session"
)

// Deps are the process-wide parts.
type Deps struct {
	Config   *config.Config
	Logger   *slog.Logger
	LP       *lp.Client
	Sessions *session.Manager
	// AWS is the loaded SDK configuration; zero when no AWS service is used.
	AWS aws.Config
	// Params is the SSM store under LP_CACHE_PARAMETER_PREFIX (the session's cache
	// tier, the certificate expiry records, and their removal at teardown); nil when no
	// prefix is set.
	Params *paramstore.Store
	// account is the account of the credentials last read (see AccountID).
	account *atomic.Pointer[string]
}

// Options adjust Build for callers other than a Lambda main.
type Options struct {
	// Logger defaults to JSON on LogOutput at the configured level.
	Logger *slog.Logger
	// LogOutput defaults to stdout; the forward function passes an *obs.Batch it shares
	// with its metrics, so an invocation's lines leave in one write.
	LogOutput io.Writer
	// HTTPClient defaults to lp.NewHTTPClient(); the local sandbox passes one that
	// trusts the simulator's CA.
	HTTPClient *http.Client
	// AWS, when set, is used instead of loading the default configuration: tests and
	// benchmarks point it at the in-process fakes without touching the environment.
	AWS *aws.Config
	// OnLogin is called before every login request to LivePerson (session.Options.OnLogin).
	// Only the forward function counts logins (forward.RecordLogin); elsewhere it is nil.
	OnLogin func(ctx context.Context)
}

// Build loads nothing from the network: it only assembles clients, so init stays fast
// and a misconfiguration fails at init with the config's own error.
func Build(ctx context.Context, cfg *config.Config, o Options) (*Deps, error) {
	logger := o.Logger
	if logger == nil {
		logger = obs.NewLogger(cmp.Or[io.Writer](o.LogOutput, os.Stdout), cfg.LogLevel)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = lp.NewHTTPClient()
	}
	d := &Deps{Config: cfg, Logger: logger, account: new(atomic.Pointer[string])}
	d.LP = lp.New(lp.Options{
		HTTPClient:      hc,
		CSDSURL:         cfg.CSDSURL,
		MappingService:  cfg.MappingService,
		MappingPath:     cfg.MappingPath,
		OAuth2Version:   cfg.OAuth2Version,
		DefaultTokenTTL: cfg.DefaultTokenTTL,

		MappingObjectsPath:    cfg.MTLS.MappingObjectsPath,
		MappingObjectsVersion: cfg.MTLS.MappingObjectsVersion,
		ServiceIDs:            cfg.MTLS.ServiceIDs,
		ActivateFlagInBody:    cfg.MTLS.ActivateFlagInBody,
	})

	var creds session.CredentialSource
	if static, ok := cfg.StaticCredentials(); ok {
		creds = secrets.Static{Creds: static}
	}
	needAWS := cfg.SecretID != "" || cfg.CachePrefix != ""
	if needAWS && o.AWS != nil {
		d.AWS = *o.AWS
	} else if needAWS {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("loading AWS configuration: %w", err)
		}
		d.AWS = awsCfg
	}
	if cfg.SecretID != "" {
		creds = secrets.NewSource(secretsmanager.NewFromConfig(d.AWS), cfg.SecretID)
	}
	if creds == nil {
		return nil, errors.New("no LivePerson credentials configured: set LP_SECRET_ID")
	}
	var store session.ParameterStore
	if cfg.CachePrefix != "" {
		d.Params = paramstore.New(ssm.NewFromConfig(d.AWS), cfg.CacheKMSKeyID)
		store = d.Params
	}
	d.Sessions = session.New(session.Options{
		LP:            d.LP,
		Credentials:   redacting{CredentialSource: creds, account: d.account},
		Store:         store,
		Prefix:        cfg.CachePrefix,
		RefreshMargin: cfg.RefreshMargin,
		DomainsTTL:    cfg.DomainsTTL,
		LeaseTTL:      cfg.LoginLeaseTTL,
		IsExists:      func(err error) bool { return errors.Is(err, paramstore.ErrExists) },
		Logger:        logger,
		OnToken:       obs.RegisterSecret,
		OnLogin:       o.OnLogin,
	})
	return d, nil
}

// redacting registers every credential value with the log redactor the moment it is
// read, so no later log line can carry it even by accident. It also notes the account,
// which is known from then on even if LivePerson cannot be reached.
type redacting struct {
	session.CredentialSource
	account *atomic.Pointer[string]
}

func (r redacting) Credentials(ctx context.Context) (lp.Credentials, error) {
	c, err := r.CredentialSource.Credentials(ctx)
	if err == nil {
		obs.RegisterSecret(c.Password)
		obs.RegisterSecret(c.ClientSecret)
		if c.AccountID != "" {
			acct := c.AccountID
			r.account.Store(&acct)
		}
	}
	return c, err
}

// AccountID is the LivePerson account this deployment serves, as far as it is known
// without asking LivePerson: the configured one with static credentials, otherwise the
// one in the secret once it has been read; "" before that. A failed health check uses
// it to report under the account's dimension.
func (d *Deps) AccountID() string {
	if d.Config.AccountID != "" {
		return d.Config.AccountID
	}
	if p := d.account.Load(); p != nil {
		return *p
	}
	return ""
}

// MustFromEnv is what a Lambda main needs: the configuration from getenv (the process
// environment; credentials required) and the built parts. A bad configuration ends the
// process at init with one message listing every problem, which Lambda reports as an
// init error.
func MustFromEnv(getenv func(string) string, o Options) *Deps {
	cfg, err := config.Load(getenv)
	if err == nil {
		err = cfg.RequireCredentials()
	}
	if err == nil {
		var d *Deps
		if d, err = Build(context.Background(), cfg, o); err == nil {
			return d
		}
	}
	fmt.Fprintln(os.Stderr, "lpmtls init:", err)
	os.Exit(1)
	return nil
}
