package wiring_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

// TestBuild wires against the simulator and the AWS fake and checks which AWS services
// each configuration uses, and that the credential read registers its secret with the
// log redactor. The redactor is process-wide, so every case has its own secret value.
func TestBuild(t *testing.T) {
	const user = "wiring-user"
	tests := []struct {
		name    string
		secret  string            // registered with the simulator, never logged
		oauth   bool              // secret is a client secret, else a password
		stored  bool              // credentials in Secrets Manager, else static in env
		env     map[string]string // beyond LP_CSDS_URL and LP_SERVICE_NAME
		wantSM  bool
		wantSSM bool
	}{
		{name: "secret id, SSM cache", secret: "pw-wiring-stored-cached-7Yq", stored: true,
			env: map[string]string{"LP_SECRET_ID": testenv.SecretID, "LP_CACHE_PARAMETER_PREFIX": testenv.Prefix}, wantSM: true, wantSSM: true},
		{name: "secret id, memory only", secret: "cs-wiring-stored-oauth-3Kd", oauth: true, stored: true,
			env: map[string]string{"LP_SECRET_ID": testenv.SecretID}, wantSM: true},
		{name: "static login, SSM cache", secret: "pw-wiring-static-cached-9Vb",
			env: map[string]string{"LP_USERNAME": user, "LP_CACHE_PARAMETER_PREFIX": testenv.Prefix}, wantSSM: true},
		{name: "static oauth, memory only", secret: "cs-wiring-static-oauth-2Lm", oauth: true,
			env: map[string]string{"LP_CLIENT_ID": user}},
	}
	for _, tc := range tests {
		// The redactor never forgets a value, so a repeated run (-count) needs fresh ones.
		tc.secret += "-" + strconv.FormatInt(runID.Add(1), 10) + "x" // no value contains another
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			acct := env.Sim.AccountID()
			vars := map[string]string{"LP_CSDS_URL": env.Sim.CSDSURL(), "LP_SERVICE_NAME": testenv.ServiceName}
			for k, v := range tc.env {
				vars[k] = v
			}
			switch {
			case tc.oauth:
				env.Sim.AddOAuthClient(user, tc.secret)
			default:
				env.Sim.AddUser(user, tc.secret)
			}
			switch {
			case tc.stored && tc.oauth:
				env.AWS.PutSecret(testenv.SecretID, `{"accountId":"`+acct+`","clientId":"`+user+`","clientSecret":"`+tc.secret+`"}`)
			case tc.stored:
				env.AWS.PutSecret(testenv.SecretID, `{"accountId":"`+acct+`","username":"`+user+`","password":"`+tc.secret+`"}`)
			case tc.oauth:
				vars["LP_ACCOUNT_ID"], vars["LP_CLIENT_SECRET"] = acct, tc.secret
			default:
				vars["LP_ACCOUNT_ID"], vars["LP_PASSWORD"] = acct, tc.secret
			}
			cfg, err := config.Load(func(k string) string { return vars[k] })
			if err != nil {
				t.Fatal(err)
			}

			var probe, logs testenv.LockedBuffer
			plog := obs.NewLogger(&probe, slog.LevelInfo)
			plog.Info("before", "v", tc.secret)
			if !strings.Contains(probe.String(), tc.secret) {
				t.Fatalf("secret redacted before any credentials read; the case proves nothing")
			}
			d, err := wiring.Build(context.Background(), cfg, wiring.Options{
				Logger:     obs.NewLogger(&logs, slog.LevelDebug),
				HTTPClient: env.Sim.HTTPClient(),
				AWS:        &env.AWSConfig,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Sessions.Get(context.Background()); err != nil {
				t.Fatalf("session: %v\nlogs:\n%s", err, logs.String())
			}

			sm, ssm := 0, 0
			for target, n := range env.AWS.Calls() {
				switch {
				case strings.HasPrefix(target, "secretsmanager."):
					sm += n
				case strings.HasPrefix(target, "AmazonSSM."):
					ssm += n
				}
			}
			if (sm > 0) != tc.wantSM || (ssm > 0) != tc.wantSSM {
				t.Errorf("Secrets Manager calls %d, SSM calls %d; want SM %v, SSM %v", sm, ssm, tc.wantSM, tc.wantSSM)
			}
			if got, want := aws.ToString(d.AWS.BaseEndpoint) != "", tc.wantSM || tc.wantSSM; got != want {
				t.Errorf("Deps.AWS set = %v, want %v (the injected config)", got, want)
			}

			plog.Info("after", "v", tc.secret)
			if _, after, _ := strings.Cut(probe.String(), `"after"`); strings.Contains(after, tc.secret) {
				t.Errorf("secret logged after the credentials read: %s", after)
			}
			if strings.Contains(logs.String(), tc.secret) {
				t.Errorf("wiring's logger wrote the secret")
			}
		})
	}
}

var runID atomic.Int64

func TestBuildWithoutCredentials(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	_, aws := testenv.AWS(t)
	if _, err := wiring.Build(context.Background(), cfg, wiring.Options{AWS: &aws}); err == nil || !strings.Contains(err.Error(), "LP_SECRET_ID") {
		t.Fatalf("err %v", err)
	}
}

// TestAccountID: the account is known without LivePerson: at once with static
// credentials, and once the secret has been read (even if LivePerson then fails).
func TestAccountID(t *testing.T) {
	env := testenv.New(t)
	acct := env.Sim.AccountID()
	build := func(vars map[string]string) *wiring.Deps {
		vars["LP_CSDS_URL"] = env.Sim.CSDSURL()
		cfg, err := config.Load(func(k string) string { return vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		d, err := wiring.Build(context.Background(), cfg, wiring.Options{
			Logger: obs.NewLogger(&testenv.LockedBuffer{}, slog.LevelInfo), HTTPClient: env.Sim.HTTPClient(), AWS: &env.AWSConfig})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	static := build(map[string]string{"LP_ACCOUNT_ID": acct, "LP_USERNAME": testenv.Username, "LP_PASSWORD": testenv.Password})
	if got := static.AccountID(); got != acct {
		t.Fatalf("static: %q", got)
	}
	stored := build(map[string]string{"LP_SECRET_ID": testenv.SecretID})
	if got := stored.AccountID(); got != "" {
		t.Fatalf("secret not read yet, account %q", got)
	}
	env.Sim.Inject(lpsim.Fault{Op: "csds", Status: 503, Times: 5})
	if _, err := stored.Sessions.Get(context.Background()); err == nil {
		t.Fatal("discovery fault did not fail the session")
	}
	if got := stored.AccountID(); got != acct {
		t.Fatalf("after the secret was read: %q, want %s", got, acct)
	}
}
