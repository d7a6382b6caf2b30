// A small Lambda custom runtime for handler.mjs: it speaks the Runtime API (GET
// invocation/next, POST invocation/{id}/response or /error, POST init/error) as AWS's
// runtime interface client does, over a keep-alive node:http agent. The official client
// (aws-lambda-ric) needs a native build; this loop is what it does for a
// request/response function.
import http from "node:http";

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = "/2018-06-01/runtime";

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent, headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function errorDoc(err) {
  return JSON.stringify({ errorType: err?.name ?? "Error", errorMessage: String(err?.message ?? err), stackTrace: String(err?.stack ?? "").split("\n") });
}

let handler;
try {
  ({ handler } = await import("./handler.mjs"));
} catch (err) {
  await call("POST", `${base}/init/error`, errorDoc(err));
  process.exit(1);
}

for (;;) {
  const next = await call("GET", `${base}/invocation/next`);
  const id = next.headers["lambda-runtime-aws-request-id"];
  const context = {
    awsRequestId: id,
    invokedFunctionArn: next.headers["lambda-runtime-invoked-function-arn"],
    getRemainingTimeInMillis: () => Number(next.headers["lambda-runtime-deadline-ms"]) - Date.now(),
  };
  try {
    const result = await handler(JSON.parse(next.body), context);
    await call("POST", `${base}/invocation/${id}/response`, JSON.stringify(result));
  } catch (err) {
    console.error(JSON.stringify({ level: "ERROR", msg: "invocation failed", error: String(err?.message ?? err) }));
    await call("POST", `${base}/invocation/${id}/error`, errorDoc(err));
  }
}
