package lpsim_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
)

func Example() {
	sim, err := lpsim.Start(lpsim.Options{AccountID: "90412233"})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	sim.AddUser("mtls-admin", "s3cret")
	hook := sim.TargetURL("/hooks/in?x=1")
	sim.AddMapping("WEBHOOKS", hook)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CAPool()}}}
	defer client.CloseIdleConnections()

	// Login Service → bearer.
	resp, err := client.Post(sim.CSDSURL()+"/api/account/90412233/login?v=1.3", "application/json",
		strings.NewReader(`{"username":"mtls-admin","password":"s3cret"}`))
	if err != nil {
		panic(err)
	}
	var login struct{ Bearer string }
	_ = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()

	// Forward through the gateway: the target sees the mapping's client certificate.
	req, _ := http.NewRequest(http.MethodPost, "https://"+sim.Host()+"/mtls/account/90412233", bytes.NewReader([]byte(`{"event":"ping"}`)))
	req.Header.Set("Authorization", "Bearer "+login.Bearer)
	req.Header.Set("LP-forward-url", hook)
	req.Header.Set("LP-service-name", "WEBHOOKS")
	req.Header.Set("LP-stop-if-certificate-not-found", "true")
	resp, err = client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Echo-Client-Cn"))
	// Output: 200 WEBHOOKS
}
