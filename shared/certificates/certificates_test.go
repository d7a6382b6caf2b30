package certificates_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// service is the production wiring (real lp.Client, real session) against the simulator.
func service(t *testing.T, env *testenv.Env) *certificates.Service {
	t.Helper()
	vars := map[string]string{
		"LP_CSDS_URL": env.Sim.CSDSURL(), "LP_ACCOUNT_ID": env.Sim.AccountID(),
		"LP_USERNAME": testenv.Username, "LP_PASSWORD": testenv.Password,
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	d, err := wiring.Build(context.Background(), cfg, wiring.Options{
		Logger: obs.NewLogger(io.Discard, slog.LevelInfo), HTTPClient: env.Sim.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return &certificates.Service{Lister: d.LP, Sessions: d.Sessions}
}

func TestList(t *testing.T) {
	env := testenv.New(t)
	notAfter := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	id, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, env)
	res, err := svc.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.AccountID != env.Sim.AccountID() {
		t.Fatalf("account %q", res.AccountID)
	}
	var found *lp.Certificate
	for i, c := range res.Certificates {
		if c.Name == "brand-hooks-2026" {
			found = &res.Certificates[i]
		}
	}
	// The simulator's own mapping has a certificate too.
	if len(res.Certificates) != 2 || found == nil || string(found.ID) != id || !found.Available() || !found.ExpiresAt.Equal(notAfter) {
		t.Fatalf("certificates %+v", res.Certificates)
	}
	if n := env.Sim.Counts().CertificateLists; n != 1 {
		t.Fatalf("%d list calls, want 1", n)
	}
}

// TestListLogsInAgainOn401: a revoked bearer costs one re-login and one more list call,
// as the mapping check does.
func TestListLogsInAgainOn401(t *testing.T) {
	env := testenv.New(t)
	svc := service(t, env)
	ctx := context.Background()
	if _, err := svc.List(ctx); err != nil {
		t.Fatal(err)
	}
	env.Sim.RevokeTokens()
	before := env.Sim.Counts()
	if _, err := svc.List(ctx); err != nil {
		t.Fatal(err)
	}
	after := env.Sim.Counts()
	if after.Logins-before.Logins != 1 || after.CertificateLists-before.CertificateLists != 2 {
		t.Fatalf("logins +%d, lists +%d; want +1, +2", after.Logins-before.Logins, after.CertificateLists-before.CertificateLists)
	}
}

func TestListErrorKinds(t *testing.T) {
	cases := []struct {
		status int
		kind   lp.Kind
	}{
		{503, lp.KindGateway},
		{429, lp.KindThrottled},
		{403, lp.KindAuth},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			env := testenv.New(t)
			env.Sim.Inject(lpsim.Fault{Op: "certificates", Status: c.status, Times: 5})
			_, err := service(t, env).List(context.Background())
			var le *lp.Error
			if !errors.As(err, &le) || le.Kind != c.kind {
				t.Fatalf("got %v, want kind %s", err, c.kind)
			}
		})
	}
}
