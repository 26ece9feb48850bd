// Dev API server and static host for the demo PWA (no framework, Node 20, node:http only).
//
//   node www/server.mjs            PORT (default 8080), DATA_DIR (default .dev-data), HOST (default 127.0.0.1)
//                                  QUIET=1 (no per-request lines), BENCH=1 (serve bench/ and node_modules/)
//
// Implements CONTRACT §2 and §2b. Every write needs `Authorization: Bearer <token>` (from /login); the
// token's subject owns what it writes. Tokens are never echoed or logged.
//
// Routes (JSON in and out):
//   POST   /api/v1/login                  {userId, ttlMs?} -> 200 {token, expiresInMs}
//   POST   /api/v1/progress               Idempotency-Key + JSON entry -> 201 {id: "srv-N"}
//   PUT    /api/v1/progress/{id}          Idempotency-Key + full JSON entry -> 200 {id}
//                                         (404 unknown/deleted id, 403 other owner, 422 localId/type changed)
//   DELETE /api/v1/progress/{id}          Idempotency-Key, no body -> 200 {id} (404 unknown/already deleted, 403 other owner)
//   POST   /api/v1/progress/batch         {"events":[{idempotencyKey, operation, backendId?, ...entry}]} ->
//                                         200 {"results":[{status, id} | {status, error} | {status, retryAfter, error}]},
//                                         one per item, in order; no Idempotency-Key header. Whole-request answers:
//                                         401 token, 415 content type, 400 bad JSON / no `events` array,
//                                         413 body > 4 MB, > 1000 items or > faults.maxBatchItems.
//   GET    /api/v1/progress               live records of the token's user (no/invalid token: every user);
//                                         ?all=1 every user; ?deleted=1 also deleted ones ({deleted: true})
//   GET    /api/v1/progress/{id}          one record (404 unknown; deleted only with ?deleted=1; 403 another
//                                         user's record when a token is given)
//   GET|PUT /api/v1/faults                the fault switch (PUT merges the given fields; see below)
//   POST|PUT|GET|DELETE /api/v1/elsewhere redirect target: 201 {id: "elsewhere-N"}, counts hits
//   GET    /api/v1/debug/elsewhere        {count}: hits of /elsewhere (DELETE resets)
//   GET    /api/v1/debug/attempts         {key: n}: requests seen per Idempotency-Key (POST, PUT, DELETE
//                                         and every batch item; counted before faults and validation;
//                                         the latest 200,000 keys)
//   GET    /api/v1/debug/requests         last 10,000 /api/ requests (debug routes excluded):
//                                         [{method, path, key, keys, status, at}] (status null: no answer
//                                         sent, e.g. offline; keys: the batch items' keys). DELETE clears.
//
// Records (GET): {id, localId, userId, type, quantity, unit, date, receivedAt, updatedAt, idempotencyKey}
// with the latest values; deleted ones also {deleted: true, deletedAt}.
// Entry body: {"localId","userId"?,"type","quantity","unit","date"} (date: ISO 8601 string). userId absent =
// the token's subject; present and different = 403. Metrics (422 otherwise; the unit must match):
//   weight kg finite 0<x<=635 | bodyFat % finite 1..75 | height cm finite 30..300 |
//   steps count integer 0..200000 | heartRate bpm integer 20..300 | mood score integer 1..10
//
// Idempotency: a key already accepted (by any endpoint, single or batch item) replays its first answer
// (single endpoints add `Idempotent-Replayed: true`); the same key with a different operation/body -> 422.
// Bodies are compared by a hash of their canonical fields (operation, id, localId, userId, type, quantity,
// unit, date), so key order, whitespace and unknown fields do not matter. Only accepted operations
// (2xx) are stored under their key: a refused one can be retried with the same key.
//
// Storage: DATA_DIR/records.jsonl, one JSON line per accepted create/update/delete (key, body hash,
// answer, values), written with one writeSync (one per batch) before the answer is sent, on one fd kept
// open. On start it is replayed to rebuild the records and the key -> answer map; a torn last line (crash
// mid-write) is cut off. Lines of older versions (no `op`) are read as creates.
//
// Fault switch (PUT /api/v1/faults merges; 422 with the reason for any invalid or unknown field). Faults
// apply to the write requests (POST/PUT/DELETE progress and the batch as a whole), never to GETs:
//   mode: "healthy" | "offline" (socket destroyed, no answer) | "flaky" (503 with probability failureRate)
//         | "slow" (delayMs before handling) | "status" (fixed `status`, 400..599) | "ratelimit" (429 +
//         Retry-After: retryAfter) | "redirect" (redirectStatus 301/302/303/307/308, default 307, with
//         Location: redirectTo, default /api/v1/elsewhere) | "truncate" (request handled and stored, then
//         headers + the first half of the JSON answer, then the socket is destroyed) | "short" (batch only:
//         all items handled and stored, answered 200 without the last result; single requests act healthy)
//   failureRate 0..1 (0.5), delayMs 0..120000 (2000), status (500), retryAfter seconds 0..3600 (5)
//   latencyMs 0..120000 (0): extra latency on every write request, in any mode
//   replay: true|false (true): false processes a repeated key as new (a POST stores a duplicate record)
//   maxBatchItems: null | n >= 1: a batch with more than n items -> 413 as a whole
//   itemFaults: [{index?, localId?, status 200..599, retryAfter?, error?, times?}]: batch items matching
//         every given criterion (0-based index, localId; neither = every item) are answered {status,
//         retryAfter?, error} and not processed/stored; `times` = batches it still applies to (null = always;
//         decremented per batch it matched, shown by GET). Replace the list to clear it (itemFaults: []).
//
// Bench mode (BENCH=1) serves bench/ and node_modules/ cross-origin isolated; static files from www/, pkg/.

import { createServer as createHttpServer } from "node:http";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, statSync, createReadStream } from "node:fs";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const MAX_BODY = 16 * 1024;
const BATCH_MAX_BODY = 4 * 1024 * 1024;
const BATCH_MAX_ITEMS = 1000;
const REQUEST_LOG_SIZE = 10000;
const TOKEN_TTL_MS = 15 * 60 * 1000;
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json", ".webmanifest": "application/manifest+json",
  ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".ts": "text/plain",
};
const FAULT_MODES = ["healthy", "offline", "flaky", "slow", "status", "ratelimit", "redirect", "truncate", "short"];
const DEFAULT_FAULTS = {
  mode: "healthy", failureRate: 0.5, delayMs: 2000, status: 500, retryAfter: 5, latencyMs: 0, replay: true,
  redirectStatus: 307, redirectTo: "/api/v1/elsewhere", maxBatchItems: null, itemFaults: [],
};
const ITEM_FAULT_FIELDS = ["index", "localId", "status", "retryAfter", "error", "times"];
const REDIRECT_STATUSES = [301, 302, 303, 307, 308];
const OPERATIONS = ["create", "update", "delete"];

/** The metrics of CONTRACT §1: unit, integer or not, inclusive bounds (weight's lower bound excluded). */
const METRICS = {
  weight: { unit: "kg", integer: false, min: 0, minExclusive: true, max: 635 },
  bodyFat: { unit: "%", integer: false, min: 1, max: 75 },
  height: { unit: "cm", integer: false, min: 30, max: 300 },
  steps: { unit: "count", integer: true, min: 0, max: 200000 },
  heartRate: { unit: "bpm", integer: true, min: 20, max: 300 },
  mood: { unit: "score", integer: true, min: 1, max: 10 },
};
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A cheap, stable 53-bit string hash (cyrb53): enough to tell two bodies sent under one key apart. */
function hash53(str) {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/** The hash of what an operation means (not of its bytes): same for a single request and a batch item. */
function operationHash(op, id, userId, body) {
  return op === "delete"
    ? hash53(JSON.stringify(["delete", id, userId]))
    : hash53(JSON.stringify([op, op === "update" ? id : null, body.localId, userId, body.type, body.quantity, body.unit, body.date]));
}

/** Why an entry body is unacceptable, or null. */
function invalidEntry(body) {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "body must be a JSON object";
  if (typeof body.localId !== "string" || !body.localId || body.localId.length > 256) return "localId must be a non-empty string of at most 256 characters";
  if (body.userId !== undefined && (typeof body.userId !== "string" || !body.userId || body.userId.length > 256)) return "userId must be a non-empty string of at most 256 characters (or absent)";
  const metric = typeof body.type === "string" && Object.hasOwn(METRICS, body.type) ? METRICS[body.type] : null;
  if (!metric) return `type must be one of ${Object.keys(METRICS).join(", ")}`;
  if (body.unit !== metric.unit) return `unit must be "${metric.unit}" for ${body.type}`;
  const q = body.quantity;
  const range = `${metric.minExclusive ? "(" : "["}${metric.min}, ${metric.max}]`;
  if (metric.integer) {
    if (!Number.isInteger(q) || q < metric.min || q > metric.max) return `quantity must be an integer in ${range} for ${body.type}`;
  } else if (typeof q !== "number" || !Number.isFinite(q) || (metric.minExclusive ? q <= metric.min : q < metric.min) || q > metric.max) {
    return `quantity must be a finite number in ${range} for ${body.type}`;
  }
  if (typeof body.date !== "string" || !ISO_DATE.test(body.date) || Number.isNaN(Date.parse(body.date))) return "date must be an ISO 8601 string";
  return null;
}

/** The append-only store: one JSON line per accepted operation, replayed at start. */
class RecordLog {
  constructor(dataDir, say = () => {}) {
    mkdirSync(dataDir, { recursive: true });
    this.file = join(dataDir, "records.jsonl");
    this.byKey = new Map(); // Idempotency-Key -> { h, status, response } (the first accepted answer)
    this.byId = new Map(); // record id -> record (latest values; deleted ones flagged), in creation order
    this.nextId = 1;
    this.fd = openSync(this.file, "a+"); // kept open: one write(2) per request (or batch), before we answer
    const data = readFileSync(this.file);
    let end = data.length;
    if (end && data[end - 1] !== 0x0a) {
      // A torn last line (crash mid-write): cut it off, or the next append would be glued to it.
      end = data.lastIndexOf(0x0a) + 1;
      ftruncateSync(this.fd, end);
      say(`[dev-api] cut a torn last line (${data.length - end} bytes) off ${this.file}`);
    }
    let skipped = 0;
    for (const line of data.subarray(0, end).toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      let row;
      try {
        row = JSON.parse(line);
      } catch {
        skipped++;
        continue;
      }
      if (!row.op && row.record) {
        // An older version's line: a create hashed over its raw body; rehash its canonical fields.
        const r = row.record;
        row = { op: "create", key: row.key, h: operationHash("create", null, r.userId, r), status: row.status, response: row.response, record: { updatedAt: r.receivedAt, ...r } };
      }
      this.apply(row);
    }
    if (skipped) say(`[dev-api] skipped ${skipped} unreadable lines in ${this.file}`);
  }

  /** All records, deleted ones included (for the start-up line). */
  get records() {
    return [...this.byId.values()];
  }

  /** Applies one row to the in-memory state; returns a function that undoes it. */
  apply(row) {
    const firstOfKey = !this.byKey.has(row.key);
    if (firstOfKey) this.byKey.set(row.key, { h: row.h, status: row.status, response: row.response });
    let undo = () => {};
    if (row.op === "create") {
      const id = row.record.id;
      this.byId.set(id, row.record);
      const n = Number(/^srv-(\d+)$/.exec(id)?.[1]);
      const nextBefore = this.nextId;
      if (n >= this.nextId) this.nextId = n + 1;
      undo = () => { this.byId.delete(id); this.nextId = nextBefore; };
    } else {
      const rec = this.byId.get(row.id);
      if (rec) {
        const before = { ...rec };
        if (row.op === "update") Object.assign(rec, { quantity: row.quantity, unit: row.unit, date: row.date, updatedAt: row.at });
        else Object.assign(rec, { deleted: true, deletedAt: row.at });
        undo = () => { for (const k of Object.keys(rec)) delete rec[k]; Object.assign(rec, before); };
      }
    }
    return firstOfKey ? () => { undo(); this.byKey.delete(row.key); } : undo;
  }

  /** Writes lines (each ending in "\n") in one write(2). */
  write(text) {
    writeSync(this.fd, text);
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
      return claims.exp > Date.now() && typeof claims.sub === "string" ? claims : null;
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

function readBody(req, limit = MAX_BODY) {
  return new Promise((resolvePromise, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 64 * MAX_BODY + limit) req.destroy(); // far too big: stop reading at all
      else if (size <= limit) chunks.push(c); // too big: keep draining so the 413 can be sent
    });
    req.on("end", () => {
      if (size > limit) reject(Object.assign(new Error(`body larger than ${limit} bytes`), { status: 413 }));
      else resolvePromise(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", reject);
    req.on("close", () => reject(Object.assign(new Error("request aborted"), { status: 400 }))); // no-op once settled
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isJson = (req) => String(req.headers["content-type"] || "").startsWith("application/json");
const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** Why a fault switch setting is unacceptable, or null. */
function invalidFaults(f) {
  if (!FAULT_MODES.includes(f.mode)) return `mode must be one of ${FAULT_MODES.join(", ")}`;
  if (!(typeof f.failureRate === "number" && f.failureRate >= 0 && f.failureRate <= 1)) return "failureRate must be a number in [0, 1]";
  if (!(Number.isInteger(f.delayMs) && f.delayMs >= 0 && f.delayMs <= 120000)) return "delayMs must be an integer in [0, 120000]";
  if (!(Number.isInteger(f.latencyMs) && f.latencyMs >= 0 && f.latencyMs <= 120000)) return "latencyMs must be an integer in [0, 120000]";
  if (!(Number.isInteger(f.status) && f.status >= 400 && f.status <= 599)) return "status must be an integer in [400, 599]";
  if (!(Number.isInteger(f.retryAfter) && f.retryAfter >= 0 && f.retryAfter <= 3600)) return "retryAfter must be seconds in [0, 3600]";
  if (typeof f.replay !== "boolean") return "replay must be true or false";
  if (!REDIRECT_STATUSES.includes(f.redirectStatus)) return `redirectStatus must be one of ${REDIRECT_STATUSES.join(", ")}`;
  if (typeof f.redirectTo !== "string" || !/^(\/|https?:\/\/)\S*$/.test(f.redirectTo) || f.redirectTo.length > 2048) return "redirectTo must be a path starting with / or an http(s) URL";
  if (f.maxBatchItems !== null && !(Number.isInteger(f.maxBatchItems) && f.maxBatchItems >= 1)) return "maxBatchItems must be null or an integer >= 1";
  if (!Array.isArray(f.itemFaults) || f.itemFaults.length > 1000) return "itemFaults must be an array (at most 1000 entries)";
  for (const [i, x] of f.itemFaults.entries()) {
    const at = `itemFaults[${i}]`;
    if (!isObject(x)) return `${at} must be an object`;
    const unknown = Object.keys(x).find((k) => !ITEM_FAULT_FIELDS.includes(k));
    if (unknown) return `${at}: unknown field "${unknown}" (known: ${ITEM_FAULT_FIELDS.join(", ")})`;
    if (x.index != null && !(Number.isInteger(x.index) && x.index >= 0)) return `${at}.index must be an integer >= 0`;
    if (x.localId != null && !(typeof x.localId === "string" && x.localId)) return `${at}.localId must be a non-empty string`;
    if (!(Number.isInteger(x.status) && x.status >= 200 && x.status <= 599)) return `${at}.status must be an integer in [200, 599]`;
    if (x.retryAfter != null && !(Number.isInteger(x.retryAfter) && x.retryAfter >= 0 && x.retryAfter <= 3600)) return `${at}.retryAfter must be seconds in [0, 3600]`;
    if (x.error != null && !(typeof x.error === "string" && x.error.length <= 1000)) return `${at}.error must be a string`;
    if (x.times != null && !(Number.isInteger(x.times) && x.times >= 0)) return `${at}.times must be null or an integer >= 0`;
  }
  return null;
}

// attemptKeys: how many Idempotency-Keys /api/v1/debug/attempts remembers (the oldest key seen goes first).
export function createDevServer({ dataDir = resolve(here, "..", ".dev-data"), wwwDir = here, pkgDir = resolve(here, "..", "pkg"), quiet = false, bench = false, attemptKeys = 200000 } = {}) {
  const say = (...a) => { if (!quiet) console.log(...a); };
  const log = new RecordLog(dataDir, say);
  const tokens = new Tokens(dataDir);
  let faults = { ...DEFAULT_FAULTS };
  // Idempotency-Key -> requests seen (this process), for the latest `attemptKeys` keys: counted
  // before the token is checked, so a client sending endless new keys must not grow it for good.
  const attempts = new Map();
  const bump = (key) => {
    attempts.set(key, (attempts.get(key) || 0) + 1);
    if (attempts.size > attemptKeys) attempts.delete(attempts.keys().next().value);
  };
  let requests = []; // ring buffer of the last REQUEST_LOG_SIZE /api/ requests
  let requestsHead = 0;
  let elsewhereHits = 0;

  function claimsOf(req) {
    const auth = String(req.headers.authorization || "");
    return auth.startsWith("Bearer ") ? tokens.verify(auth.slice(7)) : null;
  }

  /** Answers a write request; in truncate mode: headers, the first half of the body, then a dead socket. */
  function reply(res, status, body, headers = {}) {
    if (faults.mode !== "truncate") return send(res, status, body, headers);
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(text), ...headers });
    res.write(text.slice(0, Math.floor(text.length / 2)), () => res.destroy());
  }

  /** The faults that act before a write request is handled; true when they answered it. */
  async function preFaults(req, res) {
    const f = faults;
    if (f.latencyMs) await sleep(f.latencyMs);
    switch (f.mode) {
      case "offline": req.socket.destroy(); return true;
      case "flaky": if (Math.random() < f.failureRate) { send(res, 503, { error: "flaky mode: random failure" }); return true; } break;
      case "slow": await sleep(f.delayMs); break;
      case "status": send(res, f.status, { error: `fault switch: fixed status ${f.status}` }); return true;
      case "ratelimit": send(res, 429, { error: "rate limited" }, { "Retry-After": String(f.retryAfter) }); return true;
      case "redirect": send(res, f.redirectStatus, { error: `fault switch: redirected to ${f.redirectTo}` }, { Location: f.redirectTo }); return true;
    }
    return res.destroyed;
  }

  /**
   * One create/update/delete for user `sub` under `key` (body: the entry, or null for a single DELETE;
   * id: the record id for update/delete). Applies it in memory; the caller writes `line` to the log, or
   * calls `undo` if it cannot. Returns { status, response, replayed?, line?, undo? }.
   */
  function operate(sub, op, key, body, id) {
    const refuse = (status, error) => ({ status, response: { error } });
    let h;
    if (op === "delete") {
      if (body && body.userId !== undefined && body.userId !== sub) return refuse(403, "userId does not match the bearer token's user");
      if (typeof id !== "string" || !id) return refuse(422, "backendId must be a non-empty string");
      h = operationHash(op, id, sub, null);
    } else {
      const problem = invalidEntry(body);
      if (problem) return refuse(422, problem);
      if (body.userId !== undefined && body.userId !== sub) return refuse(403, "userId does not match the bearer token's user");
      if (op === "update" && (typeof id !== "string" || !id)) return refuse(422, "backendId must be a non-empty string");
      h = operationHash(op, id, sub, body);
    }
    const seen = faults.replay ? log.byKey.get(key) : undefined;
    if (seen) {
      if (seen.h !== h) return refuse(422, "Idempotency-Key reused with a different body");
      return { status: seen.status, response: seen.response, replayed: true };
    }
    const now = new Date().toISOString();
    let row;
    if (op === "create") {
      const record = {
        id: `srv-${log.nextId}`, localId: body.localId, userId: sub, type: body.type, quantity: body.quantity,
        unit: body.unit, date: body.date, receivedAt: now, updatedAt: now, idempotencyKey: key,
      };
      row = { op, key, h, status: 201, response: { id: record.id }, record };
    } else {
      const rec = log.byId.get(id);
      if (!rec || rec.deleted) return refuse(404, `no record ${id}${rec ? " (deleted)" : ""}`);
      if (rec.userId !== sub) return refuse(403, `record ${id} belongs to another user`);
      if (op === "update") {
        if (body.localId !== rec.localId) return refuse(422, `localId must stay "${rec.localId}" for record ${id}`);
        if (body.type !== rec.type) return refuse(422, `type must stay "${rec.type}" for record ${id}`);
        row = { op, key, h, status: 200, response: { id }, id, quantity: body.quantity, unit: body.unit, date: body.date, at: now };
      } else {
        row = { op, key, h, status: 200, response: { id }, id, at: now };
      }
    }
    const line = JSON.stringify(row) + "\n"; // before apply: later items of a batch may change the record
    return { status: row.status, response: row.response, line, undo: log.apply(row) };
  }

  /** POST /progress, PUT and DELETE /progress/{id}. */
  async function single(req, res, op, id) {
    const key = req.headers["idempotency-key"];
    if (key) bump(key);
    if (await preFaults(req, res)) return;
    const claims = claimsOf(req);
    if (!claims) return reply(res, 401, { error: "missing, invalid or expired bearer token" });
    if (op !== "delete" && !isJson(req)) return reply(res, 415, { error: "Content-Type must be application/json" });
    if (!key) return reply(res, 400, { error: "Idempotency-Key header is required" });
    let text;
    try {
      text = await readBody(req);
    } catch (e) {
      return reply(res, e.status || 400, { error: e.message });
    }
    let body = null;
    if (op !== "delete") {
      try {
        body = JSON.parse(text);
      } catch {
        return reply(res, 400, { error: "malformed JSON" });
      }
    }
    const r = operate(claims.sub, op, key, body, id);
    if (r.line) {
      try {
        log.write(r.line); // in the file (the kernel's) before we answer
      } catch (e) {
        r.undo();
        throw e;
      }
      say(`[dev-api] ${op} ${r.response.id} (${op === "delete" ? "" : `${body.quantity} ${body.unit} ${body.type} `}for ${claims.sub}, key ${key})`);
    }
    return reply(res, r.status, r.response, r.replayed ? { "Idempotent-Replayed": "true" } : {});
  }

  /** The item fault for events[i], or null. */
  function itemFault(i, ev, matched) {
    for (const f of faults.itemFaults) {
      if (f.times === 0) continue;
      if (f.index != null && f.index !== i) continue;
      if (f.localId != null && !(isObject(ev) && ev.localId === f.localId)) continue;
      matched.add(f);
      return { status: f.status, ...(f.retryAfter != null ? { retryAfter: f.retryAfter } : {}), error: f.error ?? `item fault: status ${f.status}` };
    }
    return null;
  }

  /** POST /progress/batch (CONTRACT §2b). */
  async function batch(req, res, entry) {
    let text, readError, parsed;
    try {
      text = await readBody(req, BATCH_MAX_BODY);
      parsed = JSON.parse(text);
    } catch (e) {
      readError = e;
    }
    const events = isObject(parsed) && Array.isArray(parsed.events) ? parsed.events : null;
    if (events && events.length <= BATCH_MAX_ITEMS) {
      const keys = events.map((ev) => (isObject(ev) && typeof ev.idempotencyKey === "string" ? ev.idempotencyKey : null));
      if (entry) entry.keys = keys;
      for (const k of keys) if (k) bump(k);
    }
    if (await preFaults(req, res)) return;
    const claims = claimsOf(req);
    if (!claims) return reply(res, 401, { error: "missing, invalid or expired bearer token" });
    if (!isJson(req)) return reply(res, 415, { error: "Content-Type must be application/json" });
    if (readError) return reply(res, readError.status || 400, { error: readError.status ? readError.message : "malformed JSON" });
    if (!events) return reply(res, 400, { error: 'body must be {"events": [...]}' });
    if (events.length > BATCH_MAX_ITEMS) return reply(res, 413, { error: `at most ${BATCH_MAX_ITEMS} events per batch` });
    if (faults.maxBatchItems !== null && events.length > faults.maxBatchItems) return reply(res, 413, { error: `fault switch: at most ${faults.maxBatchItems} events per batch` });

    const sub = claims.sub;
    const results = new Array(events.length);
    const lines = [];
    const undos = [];
    const matched = new Set();
    let stored = 0, replayed = 0;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      const fault = faults.itemFaults.length ? itemFault(i, ev, matched) : null;
      if (fault) { results[i] = fault; continue; }
      if (!isObject(ev)) { results[i] = { status: 400, error: "event must be a JSON object" }; continue; }
      const key = ev.idempotencyKey;
      if (typeof key !== "string" || !key || key.length > 256) { results[i] = { status: 400, error: "idempotencyKey must be a non-empty string of at most 256 characters" }; continue; }
      if (!OPERATIONS.includes(ev.operation)) { results[i] = { status: 400, error: `operation must be one of ${OPERATIONS.join(", ")}` }; continue; }
      const r = operate(sub, ev.operation, key, ev, ev.backendId);
      results[i] = { status: r.status, ...r.response };
      if (r.line) { lines.push(r.line); undos.push(r.undo); stored++; }
      if (r.replayed) replayed++;
    }
    if (lines.length) {
      try {
        log.write(lines.join("")); // the whole batch in one write(2), before we answer
      } catch (e) {
        for (let i = undos.length - 1; i >= 0; i--) undos[i]();
        throw e;
      }
    }
    for (const f of matched) if (f.times != null) f.times--;
    say(`[dev-api] batch of ${events.length} for ${sub}: ${stored} stored, ${replayed} replayed, ${events.length - stored - replayed} refused`);
    if (faults.mode === "short" && results.length) results.pop();
    return reply(res, 200, { results });
  }

  function listRecords(req, url) {
    const claims = claimsOf(req);
    const all = url.searchParams.get("all") === "1" || !claims;
    const withDeleted = url.searchParams.get("deleted") === "1";
    const rows = [];
    for (const r of log.byId.values()) {
      if ((withDeleted || !r.deleted) && (all || r.userId === claims.sub)) rows.push(r);
    }
    return rows;
  }

  async function api(req, res, url, entry) {
    const path = url.pathname;
    const m = req.method;
    if (path === "/api/v1/progress") {
      if (m === "POST") return single(req, res, "create", null);
      if (m === "GET") return send(res, 200, listRecords(req, url));
    }
    if (path === "/api/v1/progress/batch") {
      if (m === "POST") return batch(req, res, entry);
      return send(res, 405, { error: "the batch endpoint takes POST only" }, { Allow: "POST" });
    }
    if (path.startsWith("/api/v1/progress/") && path.indexOf("/", 17) === -1 && path.length > 17) {
      let id;
      try {
        id = decodeURIComponent(path.slice(17));
      } catch {
        return send(res, 400, { error: "malformed record id" });
      }
      if (m === "PUT") return single(req, res, "update", id);
      if (m === "DELETE") return single(req, res, "delete", id);
      if (m === "GET") {
        const rec = log.byId.get(id);
        if (!rec || (rec.deleted && url.searchParams.get("deleted") !== "1")) return send(res, 404, { error: `no record ${id}${rec ? " (deleted)" : ""}` });
        const claims = claimsOf(req);
        if (claims && rec.userId !== claims.sub && url.searchParams.get("all") !== "1") return send(res, 403, { error: `record ${id} belongs to another user` });
        return send(res, 200, rec);
      }
    }
    if (path === "/api/v1/login" && m === "POST") {
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
    if (path === "/api/v1/faults" && m === "GET") return send(res, 200, faults);
    if (path === "/api/v1/faults" && (m === "PUT" || m === "POST")) {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        return send(res, 400, { error: "malformed JSON" });
      }
      if (!isObject(body)) return send(res, 422, { error: "body must be a JSON object of fault fields" });
      const unknown = Object.keys(body).find((k) => !Object.hasOwn(DEFAULT_FAULTS, k));
      if (unknown) return send(res, 422, { error: `unknown fault field "${unknown}" (known: ${Object.keys(DEFAULT_FAULTS).join(", ")})` });
      const next = { ...faults, ...body };
      const problem = invalidFaults(next);
      if (problem) return send(res, 422, { error: problem });
      next.itemFaults = next.itemFaults.map((x) => ({ ...x })); // ours: `times` counts down
      faults = next;
      say(`[dev-api] fault switch: ${JSON.stringify(faults)}`);
      return send(res, 200, faults);
    }
    if (path === "/api/v1/elsewhere" && ["POST", "PUT", "GET", "DELETE"].includes(m)) {
      req.resume();
      elsewhereHits++;
      return send(res, 201, { id: `elsewhere-${elsewhereHits}` });
    }
    if (path === "/api/v1/debug/elsewhere" && m === "GET") return send(res, 200, { count: elsewhereHits });
    if (path === "/api/v1/debug/elsewhere" && m === "DELETE") { elsewhereHits = 0; return send(res, 200, { count: 0 }); }
    if (path === "/api/v1/debug/attempts" && m === "GET") return send(res, 200, Object.fromEntries(attempts));
    if (path === "/api/v1/debug/requests" && m === "GET") {
      return send(res, 200, requests.length < REQUEST_LOG_SIZE ? requests : [...requests.slice(requestsHead), ...requests.slice(0, requestsHead)]);
    }
    if (path === "/api/v1/debug/requests" && m === "DELETE") { requests = []; requestsHead = 0; return send(res, 200, []); }
    return send(res, 404, { error: "no such API route" });
  }

  /** Remembers an /api/ request (not the debug routes) for /api/v1/debug/requests. */
  function remember(req, res, url) {
    if (url.pathname.startsWith("/api/v1/debug/")) return null;
    const key = req.headers["idempotency-key"];
    const entry = { method: req.method, path: url.pathname, key: typeof key === "string" ? key : null, keys: null, status: null, at: Date.now() };
    if (requests.length < REQUEST_LOG_SIZE) requests.push(entry);
    else {
      requests[requestsHead] = entry;
      requestsHead = (requestsHead + 1) % REQUEST_LOG_SIZE;
    }
    const done = () => { if (res.headersSent) entry.status = res.statusCode; };
    res.once("finish", done);
    res.once("close", done);
    return entry;
  }

  function serveFile(req, res, url) {
    let rel;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      return send(res, 400, { error: "malformed percent-encoding in the path" });
    }
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
    // Inside the root itself, not a sibling folder whose name starts like it ("/pkg/..%2fpkg-x").
    if (rel.includes("\0") || !file.startsWith(join(normalize(root), sep))) return send(res, 404, { error: "not found" });
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
    // A file removed meanwhile (a rebuild empties pkg/) ends this response, not the server.
    createReadStream(file).on("error", () => res.destroy()).pipe(res);
  }

  const server = createHttpServer((req, res) => {
    let url;
    try {
      url = new URL(req.url, "http://localhost");
    } catch {
      return send(res, 400, { error: "malformed request target" });
    }
    // Async, so whatever a handler throws at once lands in the catch below, not in the process.
    const handle = (async () => (url.pathname.startsWith("/api/") ? api(req, res, url, remember(req, res, url)) : serveFile(req, res, url)))();
    handle.catch((e) => {
      console.error("[dev-api] error:", e);
      if (!res.headersSent) send(res, 500, { error: "internal error" });
      else res.destroy();
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
