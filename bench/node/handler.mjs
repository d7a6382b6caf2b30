// The alternative to lpmtls a LivePerson brand would write: a Node.js 22 Lambda handler
// that forwards an API Gateway HTTP API (v2) request through LivePerson's mTLS gateway.
// It is written as a competent brand would write it, not as a straw man: the AWS SDK v3
// for the secret, the global fetch (undici, keep-alive by default), CSDS and Login
// Service discovery, a module-scope token cache reused by warm invocations, and one
// re-login when the gateway answers 401. bench's BenchmarkVersusNode measures lpmtls
// against it; TestNodeHandler checks that it really forwards.
//
// Environment: LP_SECRET_ID (a Secrets Manager secret {accountId, username, password}),
// LP_CSDS_URL (https://host of CSDS), LP_SERVICE_NAME (the certificate mapping's service).
import { SecretsManagerClient, GetSecretValueCommand } from "@aws-sdk/client-secrets-manager";

const secrets = new SecretsManagerClient({});
const { LP_SECRET_ID, LP_CSDS_URL, LP_SERVICE_NAME } = process.env;

// Headers that describe the hop to this function, not the call to the target; fetch
// sets Host and Content-Length itself.
const dropped = new Set([
  "authorization", "host", "content-length", "connection", "keep-alive", "te", "trailer",
  "transfer-encoding", "upgrade", "proxy-connection", "forwarded", "via",
]);

// Module scope: one execution environment logs in once and reuses the bearer.
let session;

async function login() {
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: LP_SECRET_ID }));
  const { accountId, username, password } = JSON.parse(out.SecretString);
  const csds = await fetch(`${LP_CSDS_URL}/api/account/${encodeURIComponent(accountId)}/service/baseURI.json?version=1.0`);
  if (!csds.ok) throw new Error(`CSDS answered ${csds.status}`);
  const domains = Object.fromEntries((await csds.json()).baseURIs.map((b) => [b.service, b.baseURI]));
  if (!domains.agentVep || !domains.mtlsGateway) throw new Error("CSDS lists no agentVep or mtlsGateway");
  const res = await fetch(`https://${domains.agentVep}/api/account/${encodeURIComponent(accountId)}/login?v=1.3`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`login answered ${res.status}`);
  const { bearer } = await res.json();
  session = { bearer, gateway: `https://${domains.mtlsGateway}/mtls/account/${encodeURIComponent(accountId)}` };
  return session;
}

function outboundHeaders(event, bearer) {
  const h = new Headers();
  for (const [k, v] of Object.entries(event.headers ?? {})) {
    if (!dropped.has(k.toLowerCase())) h.set(k, v);
  }
  if (event.cookies?.length) h.set("cookie", event.cookies.join("; "));
  h.set("authorization", `Bearer ${bearer}`);
  if (!h.has("lp-service-name")) h.set("lp-service-name", LP_SERVICE_NAME);
  return h;
}

function reply(statusCode, message) {
  return {
    statusCode,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ message }),
    isBase64Encoded: false,
  };
}

export async function handler(event) {
  const started = performance.now();
  const method = event.requestContext?.http?.method ?? "GET";
  if (!event.headers?.["lp-forward-url"]) return reply(400, "the LP-forward-url header is required");
  let body;
  if (event.body != null && method !== "GET") {
    body = event.isBase64Encoded ? Buffer.from(event.body, "base64") : Buffer.from(event.body, "utf8");
  }
  const send = (s) => fetch(s.gateway, { method, headers: outboundHeaders(event, s.bearer), body, redirect: "manual" });

  let res = await send(session ?? (await login()));
  if (res.status === 401) {
    await res.arrayBuffer(); // drain, so the connection goes back to the pool
    res = await send(await login());
  }
  const out = Buffer.from(await res.arrayBuffer());
  const headers = {};
  for (const [k, v] of res.headers) {
    if (k !== "set-cookie" && k !== "connection" && k !== "keep-alive" && k !== "transfer-encoding") headers[k] = v;
  }
  const cookies = res.headers.getSetCookie();
  console.log(JSON.stringify({ level: "INFO", msg: "forwarded", method, status: res.status, bytes: out.length, ms: +(performance.now() - started).toFixed(2) }));
  return {
    statusCode: res.status,
    headers,
    ...(cookies.length ? { cookies } : {}),
    body: out.toString("base64"),
    isBase64Encoded: true,
  };
}
