// Package lpsim simulates the LivePerson endpoints an mTLS client depends on, over real
// TLS, for tests and for the local sandbox: CSDS domain discovery, the Login Service
// (login, refresh, logout, with the {"error":{...}} wrapper), OAuth2 client_credentials
// at sentinel, the account-scoped certificate mapping check, the mTLS forward
// gateway, and the mTLS configuration: certificates and mapping objects. A second
// HTTPS server plays the brand's target and insists on a client certificate signed by
// the simulator's CA, so a forward only succeeds when the gateway found a mapping and
// presented its certificate.
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
//   - Certificates (mtlsGateway): upload and replace by file open the p12 with its
//     password (shared/p12: RSA >= 2048 or ECDSA P-256/384/521); a refusal is 400, a
//     duplicate name 409, an unknown id 404, all in the gateway's error shape, never
//     echoing the password. expirationDate is the leaf's NotAfter, written as
//     Options.ExpiryFormat (epoch ms by default; string ms, RFC 3339 or null). Status is
//     Available until NotAfter, then UnAvailable.
//   - Activate: serviceName must be in Options.ServiceIDs (LivePerson's enum plus
//     FAAS=3); a second mapping for the same (service, url) is 400; the
//     isValidateUrlEnabled flag is read from the query (or body), true/1/yes, and a
//     failed test call is 424.
//   - Mapping objects (accountConfigReadWrite, ac-common/mtls): POST takes an array and
//     creates all or none; GET (list or /{id}), PUT /{id} and DELETE /{id} (soft delete)
//     follow the account-config convention, with the revision in ac-revision and ETag,
//     If-Match checked when sent (409 when stale) and required with
//     Options.RequireIfMatch (428).
//   - Configuration changes apply at once (LivePerson's runtime caches ~5 minutes).
//   - Go helpers for tests: ClientP12 (a client certificate signed by the CA, as a p12),
//     SeedCertificate (a certificate with a chosen NotAfter or status), Certificates
//     and Mappings (snapshots), SetExpiryFormat.
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
