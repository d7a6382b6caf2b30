package localapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
)

// The sandbox's lpmtls kit: what a user needs to try `lpmtls apply` against it.
const (
	KitCertificateName = "sandbox-demo"
	KitCommonName      = "lpmtls-sandbox-demo"
	KitPasswordEnv     = "SANDBOX_P12_PASSWORD"
	KitPath            = "/hooks/lpmtls-demo" // on the simulated target, mapped only by the kit's apply
)

// Kit is a directory with the sandbox's CA, a client certificate as a p12 signed by
// that CA (so the sandbox target accepts it) and an lpmtls configuration mapping it.
// It is removed when the sandbox stops.
type Kit struct {
	Dir, CAFile, P12File, ConfigFile string
	P12Password                      string
	// URL is the target URL the configuration maps.
	URL string
}

func writeKit(sim *lpsim.Sim, serviceName string) (*Kit, error) {
	dir, err := os.MkdirTemp("", "lpmtls-sandbox-")
	if err != nil {
		return nil, err
	}
	k := &Kit{Dir: dir, CAFile: filepath.Join(dir, "ca.pem"), P12File: filepath.Join(dir, "demo.p12"),
		ConfigFile: filepath.Join(dir, "mtls.yaml"), P12Password: randomPassword(), URL: sim.TargetURL(KitPath)}
	fail := func(err error) (*Kit, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("writing the sandbox's lpmtls kit: %w", err)
	}
	if err := sim.WriteCAFile(k.CAFile); err != nil {
		return fail(err)
	}
	data, _, err := sim.ClientP12(lpsim.ClientCert{CommonName: KitCommonName, NotAfter: time.Now().AddDate(1, 0, 0)}, k.P12Password)
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(k.P12File, data, 0o600); err != nil {
		return fail(err)
	}
	cfg := fmt.Sprintf(`# Written by make run for trying lpmtls against the sandbox; removed when it stops.
version: 1
accountId: %s
certificates:
  - name: %s
    p12: demo.p12
    passwordEnv: %s
mappings:
  - service: %s
    url: %s
    certificate: %s
`, strconv.Quote(sim.AccountID()), KitCertificateName, KitPasswordEnv, serviceName, k.URL, KitCertificateName)
	if err := os.WriteFile(k.ConfigFile, []byte(cfg), 0o644); err != nil {
		return fail(err)
	}
	return k, nil
}

// Remove deletes the kit's directory.
func (k *Kit) Remove() { os.RemoveAll(k.Dir) }

// banner is the part of the start-up text about the CLI: the sandbox's endpoint and
// credentials as the LP_* variables lpmtls reads, and the commands to try.
func (k *Kit) banner(a *App) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n# Try the lpmtls CLI against this sandbox (in another shell, from the repository root):\n")
	fmt.Fprintf(&b, "export LP_ACCOUNT_ID=%s LP_USERNAME=%s LP_PASSWORD=%s LP_CSDS_URL=%s\n",
		a.Config.AccountID, shellQuote(a.Config.Username), shellQuote(a.Config.Password), a.Config.CSDSURL)
	fmt.Fprintf(&b, "export SSL_CERT_FILE=%s %s=%s\n", shellQuote(k.CAFile), KitPasswordEnv, shellQuote(k.P12Password))
	fmt.Fprintf(&b, "go run ./cmd/lpmtls plan -f %s\n", shellQuote(k.ConfigFile))
	fmt.Fprintf(&b, "go run ./cmd/lpmtls apply -f %s\n", shellQuote(k.ConfigFile))
	fmt.Fprintf(&b, "# apply uploads %s and maps %s %s to it; a forward to that URL\n", k.P12File, a.Config.ServiceName, k.URL)
	fmt.Fprintf(&b, "# (the first command above, with the URL changed) then shows X-Echo-Client-Cn: %s\n", KitCommonName)
	return b.String()
}
