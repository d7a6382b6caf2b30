package localapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

// Mode says what the local API talks to.
type Mode string

const (
	// ModeSandbox is the embedded LivePerson simulator, chosen when no credentials are
	// configured.
	ModeSandbox Mode = "sandbox"
	// ModeLivePerson is the real LivePerson, with the configured credentials.
	ModeLivePerson Mode = "liveperson"
)

// The sandbox's fixed facts.
const (
	SandboxAccountID = lpsim.DefaultAccountID
	SandboxUsername  = "sandbox-admin"
	SandboxPath      = "/hooks/in?x=1"   // on the simulated target, mapped
	SandboxUnmapped  = "/hooks/unmapped" // on the simulated target, not mapped
)

// The routes, as the SAM template declares them.
const (
	RouteMapping = "POST /mapping"
	RouteForward = "ANY /forward"
)

// App is the functions wired for local use: the handler, plus the simulator in sandbox
// mode.
type App struct {
	Mode    Mode
	Config  *config.Config // as used: in sandbox mode, pointing at the simulator
	Handler *Handler
	// Sandbox only.
	Sim         *lpsim.Sim
	MappedURL   string
	UnmappedURL string
	// Kit lets a user try the lpmtls CLI against the sandbox.
	Kit *Kit

	hc *http.Client
}

// AppOptions configure NewApp.
type AppOptions struct {
	Logger       *slog.Logger
	Timeout      time.Duration
	MaxBodyBytes int64
}

// NewApp wires the mapping and forward functions for cfg: in sandbox mode when cfg has
// no credentials, against the real LivePerson otherwise. Close releases it.
func NewApp(ctx context.Context, cfg *config.Config, o AppOptions) (*App, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	a := &App{Mode: ModeLivePerson}
	if !cfg.HasCredentials() {
		if err := a.startSandbox(cfg, logger); err != nil {
			return nil, err
		}
	} else {
		a.Config = cfg
		logger.Info("local API mode: liveperson", "mode", ModeLivePerson, "credentials", credentialSource(cfg),
			"csds", cfg.CSDSURL, "cache", cacheTier(cfg.CachePrefix))
	}
	deps, err := wiring.Build(ctx, a.Config, wiring.Options{Logger: logger, HTTPClient: a.hc})
	if err != nil {
		a.Close()
		return nil, err
	}
	// The same services and routers the Lambda mains build (functions/*/main.go).
	fwd := forward.NewService(a.Config, deps.LP, deps.Sessions, logger)
	mp := &mapping.Service{Checker: deps.LP, Sessions: deps.Sessions, Logger: logger}
	a.Handler, err = NewHandler(Options{
		Routes: []Route{
			{Key: RouteMapping, Function: "mapping", Invoker: lambdaevent.Router{Name: "mapping", HTTP: mp.HandleHTTP}},
			{Key: RouteForward, Function: "forward", Invoker: lambdaevent.Router{Name: "forward", HTTP: fwd.HandleHTTP}},
		},
		Timeout:      o.Timeout,
		MaxBodyBytes: o.MaxBodyBytes,
		Logger:       logger,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// startSandbox starts the simulator and points a copy of cfg at it.
func (a *App) startSandbox(cfg *config.Config, logger *slog.Logger) error {
	sim, err := lpsim.Start(lpsim.Options{AccountID: SandboxAccountID})
	if err != nil {
		return fmt.Errorf("starting the LivePerson simulator: %w", err)
	}
	hc := sim.HTTPClient()

	password := randomPassword()
	sim.AddUser(SandboxUsername, password)
	a.MappedURL = sim.TargetURL(SandboxPath)
	a.UnmappedURL = sim.TargetURL(SandboxUnmapped)
	sim.AddMapping(cfg.ServiceName, a.MappedURL)

	sc := *cfg
	sc.SecretID, sc.ClientID, sc.ClientSecret = "", "", ""
	sc.AccountID, sc.Username, sc.Password = sim.AccountID(), SandboxUsername, password
	sc.CSDSURL = sim.CSDSURL()
	if sc.CachePrefix != "" {
		logger.Warn("sandbox mode keeps tokens in memory only; LP_CACHE_PARAMETER_PREFIX is ignored")
		sc.CachePrefix, sc.CacheKMSKeyID = "", ""
	}
	kit, err := writeKit(sim, cfg.ServiceName)
	if err != nil {
		sim.Close()
		return err
	}
	a.Mode, a.Config, a.Sim, a.hc, a.Kit = ModeSandbox, &sc, sim, hc, kit
	logger.Info("local API mode: sandbox (no LivePerson credentials configured)", "mode", ModeSandbox,
		"account", sim.AccountID(), "csds", sim.CSDSURL(), "mappedTarget", a.MappedURL,
		"serviceName", cfg.ServiceName, "cache", cacheTier(""))
	return nil
}

func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "sbx-" + hex.EncodeToString(b)
}

func credentialSource(cfg *config.Config) string {
	if cfg.SecretID != "" {
		return "LP_SECRET_ID (Secrets Manager)"
	}
	if c, ok := cfg.StaticCredentials(); ok && c.Method() == lp.AuthOAuth2 {
		return "LP_ACCOUNT_ID + LP_CLIENT_ID/LP_CLIENT_SECRET (OAuth2)"
	}
	return "LP_ACCOUNT_ID + LP_USERNAME/LP_PASSWORD (login)"
}

func cacheTier(prefix string) string {
	if prefix == "" {
		return "memory"
	}
	return "memory + SSM under " + prefix
}

// Examples are the requests the banner prints. In sandbox mode they work as
// printed; against the real LivePerson the target URL is a placeholder.
func (a *App) Examples() []Example {
	service := a.Config.ServiceName
	mapped, unmapped := a.MappedURL, a.UnmappedURL
	fwdComment := "Forward through the mTLS gateway; the sandbox target echoes the request (add -i to see X-Echo-Client-Cn: " + service + ")"
	mapComment := "Check certificate mappings: the first pair is configured, the second is missing"
	if a.Mode != ModeSandbox {
		mapped = "https://target.example.com/webhook"
		unmapped = "https://target.example.com/not-mapped"
		fwdComment = "Forward through the mTLS gateway (replace " + mapped + " with a URL mapped for " + service + " in your account)"
		mapComment = "Check certificate mappings (replace the URLs with your own)"
	}
	var pairs strings.Builder
	enc := json.NewEncoder(&pairs)
	enc.SetEscapeHTML(false) // a URL's & must print as itself in the curl line
	_ = enc.Encode([]lp.Mapping{{ServiceName: service, URL: mapped}, {ServiceName: service, URL: unmapped}})
	return []Example{
		{
			Comment: fwdComment,
			Method:  http.MethodPost,
			Path:    "/forward",
			Header:  [][2]string{{forward.HeaderForwardURL, mapped}, {"Content-Type", "application/json"}},
			Body:    `{"hello":"mtls"}`,
		},
		{
			Comment: mapComment,
			Method:  http.MethodPost,
			Path:    "/mapping",
			Header:  [][2]string{{"Content-Type", "application/json"}},
			Body:    strings.TrimSpace(pairs.String()),
		},
	}
}

// Close stops the simulator and drops idle connections.
func (a *App) Close() {
	if a.hc != nil {
		a.hc.CloseIdleConnections()
	}
	if a.Sim != nil {
		a.Sim.Close()
	}
	if a.Kit != nil {
		a.Kit.Remove()
	}
}
