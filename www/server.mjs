// Dev API server and static host for the demo PWA (no framework).
//
//   node www/server.mjs            PORT (default 8080), DATA_DIR (default .dev-data), HOST (default 127.0.0.1)
//
// Implements CONTRACT §2 for POST /api/v1/progress: Bearer auth, Idempotency-Key (a repeated key
// gets the first response; the same key with a different body gets 422), {"id": ...} answers,
// and an append-only record file so a restart loses nothing. A fault switch (offline, flaky, slow,
// a fixed status, 429 + Retry-After) can be flipped over HTTP (PUT /api/v1/faults) and from the demo.

import { createServer as createHttpServer } from "node:http";
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, statSync, createReadStream } from "node:fs";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const MAX_BODY = 16 * 1024;
const TOKEN_TTL_MS = 15 * 60 * 1000;
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json", ".webmanifest": "application/manifest+json",
  ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".ts": "text/plain",
};
const FAULT_MODES = ["healthy", "offline", "flaky", "slow", "status", "ratelimit"];

/** The append-only store: one JSON line per accepted upload. */
class RecordLog {
  constructor(dataDir) {
    mkdirSync(dataDir, { recursive: true });
    this.file = join(dataDir, "records.jsonl");
    this.byKey = new Map(); // Idempotency-Key -> { bodyHash, status, response, record }
    this.records = [];
    if (existsSync(this.file)) {
      for (const line of readFileSync(this.file, "utf8").split("\n")) {
        if (!line.trim()) continue;
        try {
          const row = JSON.parse(line);
          this.byKey.set(row.key, row);
          this.records.push(row.record);
        } catch {
          // A torn last line after a crash: the client will retry it with the same key.
        }
      }
    }
    this.nextId = this.records.length + 1;
    this.fd = openSync(this.file, "a"); // kept open: one write(2) per record, before we answer
  }

  accept(key, bodyHash, userId, body) {
    const record = {
      id: `srv-${this.nextId++}`, localId: body.localId, userId, type: body.type, quantity: body.quantity,
      unit: body.unit, date: body.date, receivedAt: new Date().toISOString(), idempotencyKey: key,
    };
    const row = { key, bodyHash, status: 201, response: { id: record.id }, record };
    writeSync(this.fd, JSON.stringify(row) + "\n"); // in the file (the kernel's) before we answer
    this.byKey.set(key, row);
    this.records.push(record);
    return row;
  }
}

/** Stateless demo tokens: base64url({sub, exp}).hmac, signed with a secret kept in DATA_DIR. */
class Tokens {
  constructor(dataDir) {
    const file = join(dataDir, "secret");
    if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString("hex"));
    this.secret = readFileSync(file, "utf8").trim();
    this.verified = new Map();
  }
  issue(userId, ttlMs = TOKEN_TTL_MS) {
    const payload = Buffer.from(JSON.stringify({ sub: userId, exp: Date.now() + ttlMs })).toString("base64url");
    return `${payload}.${this.sign(payload)}`;
  }
  sign(payload) {
    return createHmac("sha256", this.secret).update(payload).digest("base64url");
  }
  verify(token) {
    // A verified token is remembered until it expires: one HMAC per token, not per request.
    const known = this.verified.get(token);
    if (known) return known.exp > Date.now() ? known : null;
    const claims = this.check(token);
    if (claims) {
      if (this.verified.size > 10000) this.verified.clear();
      this.verified.set(token, claims);
    }
    return claims;
  }
  check(token) {
    const [payload, mac] = String(token || "").split(".");
    if (!payload || !mac) return null;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    try {
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      return claims.exp > Date.now() ? claims : null;
    } catch {
      return null;
    }
  }
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolvePromise, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 64 * MAX_BODY) req.destroy(); // far too big: stop reading at all
      else if (size <= MAX_BODY) chunks.push(c); // too big: keep draining so the 413 can be sent
    });
    req.on("end", () => {
      if (size > MAX_BODY) reject(Object.assign(new Error(`body larger than ${MAX_BODY} bytes`), { status: 413 }));
      else resolvePromise(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", reject);
  });
}

/** Why a progress body is unacceptable, or null. */
function invalidProgress(body) {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "body must be a JSON object";
  if (typeof body.localId !== "string" || !body.localId) return "localId must be a non-empty string";
  if (body.type !== "weight") return 'type must be "weight"';
  if (typeof body.quantity !== "number" || !(body.quantity > 0 && body.quantity <= 635)) return "quantity must be a number in (0, 635]";
  if (body.unit !== "kg") return 'unit must be "kg"';
  if (typeof body.date !== "string" || Number.isNaN(Date.parse(body.date))) return "date must be an ISO 8601 string";
  return null;
}

export function createDevServer({ dataDir = resolve(here, "..", ".dev-data"), wwwDir = here, pkgDir = resolve(here, "..", "pkg"), quiet = false, bench = false } = {}) {
  const log = new RecordLog(dataDir);
  const tokens = new Tokens(dataDir);
  let faults = { mode: "healthy", failureRate: 0.5, delayMs: 2000, status: 500, retryAfter: 5 };
  const attempts = new Map(); // Idempotency-Key -> POSTs seen (this process)
  const say = (...a) => { if (!quiet) console.log(...a); };

  async function progress(req, res) {
    const key = req.headers["idempotency-key"];
    if (key) attempts.set(key, (attempts.get(key) || 0) + 1);
    // Faults first: they model the network and the server being unwell.
    switch (faults.mode) {
      case "offline": req.socket.destroy(); return;
      case "flaky": if (Math.random() < faults.failureRate) return send(res, 503, { error: "flaky mode: random failure" }); break;
      case "slow": await new Promise((r) => setTimeout(r, faults.delayMs)); break;
      case "status": return send(res, faults.status, { error: `fault switch: fixed status ${faults.status}` });
      case "ratelimit": return send(res, 429, { error: "rate limited" }, { "Retry-After": String(faults.retryAfter) });
    }
    if (res.destroyed) return;
    const auth = String(req.headers.authorization || "");
    const claims = auth.startsWith("Bearer ") ? tokens.verify(auth.slice(7)) : null;
    if (!claims) return send(res, 401, { error: "missing, invalid or expired bearer token" });
    if (!String(req.headers["content-type"] || "").startsWith("application/json")) return send(res, 415, { error: "Content-Type must be application/json" });
    if (!key) return send(res, 400, { error: "Idempotency-Key header is required" });
    let text;
    try {
      text = await readBody(req);
    } catch (e) {
      return send(res, e.status || 400, { error: e.message });
    }
    const bodyHash = createHash("sha256").update(text).digest("hex");
    const seen = log.byKey.get(key);
    if (seen) {
      if (seen.bodyHash !== bodyHash) return send(res, 422, { error: "Idempotency-Key reused with a different body" });
      return send(res, seen.status, seen.response, { "Idempotent-Replayed": "true" });
    }
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      return send(res, 400, { error: "malformed JSON" });
    }
    const problem = invalidProgress(body);
    if (problem) return send(res, 422, { error: problem });
    const row = log.accept(key, bodyHash, claims.sub, body);
    say(`[dev-api] stored ${row.record.id} (${body.quantity} kg for ${claims.sub}, key ${key})`);
    return send(res, row.status, row.response);
  }

  async function api(req, res, url) {
    const path = url.pathname;
    if (path === "/api/v1/progress" && req.method === "POST") return progress(req, res);
    if (path === "/api/v1/progress" && req.method === "GET") {
      const auth = String(req.headers.authorization || "");
      const claims = auth.startsWith("Bearer ") ? tokens.verify(auth.slice(7)) : null;
      const rows = url.searchParams.get("all") === "1" || !claims ? log.records : log.records.filter((r) => r.userId === claims.sub);
      return send(res, 200, rows);
    }
    if (path === "/api/v1/login" && req.method === "POST") {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        return send(res, 400, { error: "malformed JSON" });
      }
      const userId = body && body.userId;
      if (typeof userId !== "string" || !userId.trim() || userId.length > 256) return send(res, 422, { error: "userId must be a non-empty string" });
      const ttl = Number.isInteger(body.ttlMs) && body.ttlMs > 0 ? body.ttlMs : TOKEN_TTL_MS;
      return send(res, 200, { token: tokens.issue(userId, ttl), expiresInMs: ttl });
    }
    if (path === "/api/v1/faults" && req.method === "GET") return send(res, 200, faults);
    if (path === "/api/v1/faults" && (req.method === "PUT" || req.method === "POST")) {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        return send(res, 400, { error: "malformed JSON" });
      }
      const next = { ...faults, ...body };
      if (!FAULT_MODES.includes(next.mode)) return send(res, 422, { error: `mode must be one of ${FAULT_MODES.join(", ")}` });
      if (!(next.failureRate >= 0 && next.failureRate <= 1)) return send(res, 422, { error: "failureRate must be in [0, 1]" });
      if (!(Number.isInteger(next.delayMs) && next.delayMs >= 0 && next.delayMs <= 120000)) return send(res, 422, { error: "delayMs must be an integer in [0, 120000]" });
      if (!(Number.isInteger(next.status) && next.status >= 400 && next.status <= 599)) return send(res, 422, { error: "status must be an integer in [400, 599]" });
      if (!(Number.isInteger(next.retryAfter) && next.retryAfter >= 0 && next.retryAfter <= 3600)) return send(res, 422, { error: "retryAfter must be seconds in [0, 3600]" });
      faults = next;
      say(`[dev-api] fault switch: ${JSON.stringify(faults)}`);
      return send(res, 200, faults);
    }
    if (path === "/api/v1/debug/attempts" && req.method === "GET") return send(res, 200, Object.fromEntries(attempts));
    return send(res, 404, { error: "no such API route" });
  }

  function serveFile(req, res, url) {
    let rel = decodeURIComponent(url.pathname);
    let root = wwwDir;
    // `npm run bench` also serves its pages and the npm packages they import (workbox).
    const roots = [["/pkg/", pkgDir], ...(bench ? [["/bench/", resolve(here, "..", "bench")], ["/node_modules/", resolve(here, "..", "node_modules")]] : [])];
    for (const [prefix, dir] of roots) {
      if (rel.startsWith(prefix)) {
        root = dir;
        rel = rel.slice(prefix.length - 1);
        break;
      }
    }
    if (rel === "/") rel = "/index.html";
    const file = normalize(join(root, rel));
    if (!file.startsWith(normalize(root))) return send(res, 404, { error: "not found" });
    let stat;
    try {
      stat = statSync(file);
    } catch {
      return send(res, 404, { error: "not found" });
    }
    if (!stat.isFile()) return send(res, 404, { error: "not found" });
    res.writeHead(200, {
      "Content-Type": TYPES[extname(file)] || "application/octet-stream",
      "Content-Length": stat.size,
      "Cache-Control": "no-cache",
      ...(rel === "/sw.js" ? { "Service-Worker-Allowed": "/" } : {}),
      // The bench page is cross-origin isolated: performance.now() then has microsecond, not
      // 100 us, resolution.
      ...(bench ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } : {}),
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).pipe(res);
  }

  const server = createHttpServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    const handle = url.pathname.startsWith("/api/") ? api(req, res, url) : Promise.resolve(serveFile(req, res, url));
    handle.catch((e) => {
      console.error("[dev-api] error:", e);
      if (!res.headersSent) send(res, 500, { error: "internal error" });
    });
  });
  return { server, log, setFaults: (f) => { faults = { ...faults, ...f }; } };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST || "127.0.0.1";
  const dataDir = resolve(process.env.DATA_DIR || resolve(here, "..", ".dev-data"));
  const { server, log } = createDevServer({ dataDir, quiet: process.env.QUIET === "1", bench: process.env.BENCH === "1" });
  if (!existsSync(resolve(here, "..", "pkg", "progress_outbox.js"))) {
    console.warn("[dev-api] pkg/ is missing: run `npm run build` (npm start does it for you)");
  }
  server.listen(port, host, () => {
    const { port: actual } = server.address();
    console.log(`[dev-api] ${log.records.length} stored records loaded from ${dataDir}`);
    console.log(`progress-outbox demo: http://localhost:${actual}/`);
  });
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
}
