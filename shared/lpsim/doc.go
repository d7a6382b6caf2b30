// Package lpsim simulates the LivePerson endpoints an mTLS client depends on, over real
// TLS, for tests and for the local sandbox: CSDS domain discovery, the Login Service
// (login, refresh, logout, with the {"error":{...}} wrapper), OAuth2 client_credentials
// at sentinel, the account-scoped certificate mapping check and the mTLS forward
// gateway. A second HTTPS server plays the brand's target and insists on a client
// certificate signed by the simulator's CA, so a forward only succeeds when the gateway
// found a mapping and presented its certificate.
//
// All four CSDS services point at the same host (Host). Faults can be queued per
// endpoint (Inject) and every call is counted (Counts).
//
// Choices where LivePerson documents nothing:
//   - Unknown account: CSDS answers 200 {"baseURIs":[]}; login 401 (wrapper, "bad
//     site"); OAuth2 401 invalid_client; mapping check and forward 401 with
//     WWW-Authenticate, since tokens are only valid for the simulator's account.
//   - The gateway accepts a Login Service bearer or an OAuth2 JWT; OAuth1 is refused.
//   - Refresh slides the bearer's expiry by SessionTTL; RevokeTokens also ends sessions.
//   - Gateway and CSDS error bodies are {"code":N,"message":"..."}.
//
// Minimal use:
//
//	sim, err := lpsim.Start(lpsim.Options{AccountID: "90412233"})
//	if err != nil { ... }
//	defer sim.Close()
//	sim.AddUser("mtls-admin", "pw")
//	sim.AddMapping("WEBHOOKS", sim.TargetURL("/hooks/in?x=1"))
//	// point the client at sim.CSDSURL() and trust sim.CAPool() (or SSL_CERT_FILE =
//	// the file written by sim.WriteCAFile).
package lpsim
