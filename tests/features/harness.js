// Test doubles for the feature suite (tests/features.rs): a scripted fake API behind
// globalThis.fetch, platform switches (navigator.onLine, navigator.connection), a schema-v3
// database built by hand, and raw IndexedDB reads.

// ---------------------------------------------------------------------------------------------
// The fake API. It behaves like www/server.mjs for what the outbox sends (CONTRACT §2, §2b):
//   POST   .../progress          -> 201 {id: "srv-N"}
//   PUT    .../progress/{id}     -> 200 {id}   (404 unknown or deleted)
//   DELETE .../progress/{id}     -> 200 {id}   (404 unknown or deleted)
//   POST   .../progress/batch    -> 200 {results: [...]} (each item as if it were its own request)
// A key already answered with a 2xx is answered the same again (replay), without a second write.
//
// `script` (JS source of `(req, st) => spec | undefined`, may be async) shapes each answer; a spec:
//   delayMs, hop (one more task before answering), hold: "name" (wait for st.release("name")),
//   hang (until aborted), networkError,
//   status + body (a fixed answer, nothing processed), headers,
//   after processing: cut (half the body, then the connection dies), notJson, dropLast (batch: the
//   last result left out).
// `itemScript` (source of `(item, index, req, st) => {status, error?, retryAfter?, id?} | undefined`)
// answers single batch items without processing them.
//
// The state records every request ({n, method, path, key, body, status, items}), a log of
// ["req", n] / ["ans", n] / ["abort", n] in order, the records, and `violations`: a request that
// touched an entry while another request for the same entry was still in flight.
export function fakeServer(script, itemScript) {
  const compile = (src) => (src ? new Function(`return (${src})`)() : null);
  const st = {
    requests: [],
    log: [],
    records: new Map(),
    byKey: new Map(),
    ops: [],
    inFlight: 0,
    maxInFlight: 0,
    busy: new Map(),
    violations: [],
    nextId: 1,
    waiting: new Map(),
    script: compile(script),
    itemScript: compile(itemScript),
    setScript(src) { this.script = compile(src); },
    setItemScript(src) { this.itemScript = compile(src); },
    release(name) {
      const list = this.waiting.get(name) || [];
      this.waiting.set(name, []);
      for (const go of list) go();
      return list.length;
    },
    held(name) { return (this.waiting.get(name) || []).length; },
    count(method, pathEnd) {
      return this.requests.filter((r) => (!method || r.method === method) && (!pathEnd || r.path.endsWith(pathEnd))).length;
    },
    of(method) { return this.requests.filter((r) => r.method === method); },
    batches() { return this.requests.filter((r) => r.path.endsWith("/batch")); },
    batchSizes() { return this.batches().map((r) => (r.body && r.body.events ? r.body.events.length : 0)); },
    live() { return [...this.records.values()].filter((r) => !r.deleted); },
    all() { return [...this.records.values()]; },
    record(id) { return this.records.get(id) || null; },
    byLocal(localId) { return [...this.records.values()].filter((r) => r.localId === localId); },
    position(kind, n) { return this.log.findIndex(([k, i]) => k === kind && i === n); },
    resetInFlight() { this.maxInFlight = this.inFlight; },
  };

  const aborted = () => new DOMException("The operation was aborted.", "AbortError");
  const answer = (status, body) => ({ status, body });

  function operate(op, key, body, id, req) {
    if (key && st.byKey.has(key)) {
      req.replayed = (req.replayed || 0) + 1;
      return st.byKey.get(key);
    }
    let result;
    if (op === "create") {
      const rec = { id: `srv-${st.nextId++}`, localId: body.localId, userId: body.userId, type: body.type, quantity: body.quantity, unit: body.unit, date: body.date, deleted: false };
      st.records.set(rec.id, rec);
      result = answer(201, { id: rec.id });
    } else {
      const rec = st.records.get(id);
      if (!rec || rec.deleted) {
        result = answer(404, { error: `no record ${id}` });
      } else if (op === "update") {
        Object.assign(rec, { quantity: body.quantity, unit: body.unit, date: body.date });
        result = answer(200, { id });
      } else {
        rec.deleted = true;
        result = answer(200, { id });
      }
    }
    st.ops.push({ op, key, id: result.body.id || id, localId: body ? body.localId : st.records.get(id)?.localId, quantity: body ? body.quantity : null, status: result.status, n: req.n });
    if (key && result.status >= 200 && result.status < 300) st.byKey.set(key, result);
    return result;
  }

  function handle(req) {
    const m = /\/progress(?:\/([^/]+))?$/.exec(req.path);
    if (req.path.endsWith("/batch")) {
      const events = req.body && Array.isArray(req.body.events) ? req.body.events : null;
      if (!events) return answer(400, { error: "no events" });
      const results = events.map((ev, i) => {
        const scripted = st.itemScript ? st.itemScript(ev, i, req, st) : undefined;
        if (scripted) return scripted;
        const r = operate(ev.operation, ev.idempotencyKey, ev.operation === "delete" ? null : ev, ev.backendId, req);
        return { status: r.status, ...r.body };
      });
      return answer(200, { results });
    }
    if (!m) return answer(404, { error: "no such route" });
    const id = m[1] ? decodeURIComponent(m[1]) : null;
    if (req.method === "POST" && !id) return operate("create", req.key, req.body, null, req);
    if (req.method === "PUT" && id) return operate("update", req.key, req.body, id, req);
    if (req.method === "DELETE" && id) return operate("delete", req.key, null, id, req);
    return answer(405, { error: "method not allowed" });
  }

  // The entries a request touches (for the "never two at once" check).
  function touched(req) {
    if (req.items) return req.items.map((ev) => ev && ev.localId).filter(Boolean);
    if (req.body && req.body.localId) return [req.body.localId];
    const m = /\/progress\/([^/]+)$/.exec(req.path);
    if (m) {
      const rec = st.records.get(decodeURIComponent(m[1]));
      return [rec ? rec.localId : `backend:${m[1]}`];
    }
    return [];
  }

  globalThis.fetch = async (input, init = {}) => {
    const isRequest = typeof input === "object" && input !== null && "url" in input && "method" in input;
    const url = isRequest ? input.url : String(input);
    const method = (init.method || (isRequest ? input.method : "GET")).toUpperCase();
    const headers = {};
    new Headers(init.headers || (isRequest ? input.headers : {})).forEach((v, k) => { headers[k] = v; });
    const signal = init.signal || (isRequest ? input.signal : null);
    const text = init.body !== undefined ? init.body : isRequest && method !== "GET" && method !== "HEAD" ? await input.text() : null;
    let body = null;
    if (text) {
      try { body = JSON.parse(text); } catch { body = text; }
    }
    const n = st.requests.length + 1;
    const req = {
      n, method, url, path: new URL(url, globalThis.location.href).pathname,
      key: headers["idempotency-key"] ?? null, auth: headers.authorization ?? null, contentType: headers["content-type"] ?? null,
      body, rawBody: text, status: null, aborted: false,
      items: body && typeof body === "object" && Array.isArray(body.events) ? body.events : null,
    };
    st.requests.push(req);
    st.log.push(["req", n]);
    const entries = touched(req);
    for (const l of entries) {
      if (st.busy.get(l)) st.violations.push(`entry ${l}: request ${n} (${method} ${req.path}) sent while another request for it was in flight`);
      st.busy.set(l, (st.busy.get(l) || 0) + 1);
    }
    st.inFlight += 1;
    st.maxInFlight = Math.max(st.maxInFlight, st.inFlight);
    const wait = (p) => new Promise((resolve, reject) => {
      if (signal && signal.aborted) { req.aborted = true; reject(aborted()); return; }
      const onAbort = () => { req.aborted = true; reject(aborted()); };
      if (signal) signal.addEventListener("abort", onAbort, { once: true });
      p.then((v) => { if (signal) signal.removeEventListener("abort", onAbort); resolve(v); });
    });
    try {
      let spec = st.script ? await st.script(req, st) : undefined;
      spec = spec || {};
      if (spec.delayMs) await wait(new Promise((r) => setTimeout(r, spec.delayMs)));
      // One more task before the answer (a network answer is a task of its own, queued behind
      // timers that came due meanwhile).
      if (spec.hop) await wait(new Promise((r) => setTimeout(r, 0)));
      if (spec.hold) {
        await wait(new Promise((r) => {
          const list = st.waiting.get(spec.hold) || [];
          list.push(r);
          st.waiting.set(spec.hold, list);
        }));
      }
      if (spec.hang) await wait(new Promise(() => {}));
      if (spec.networkError) throw new TypeError("Failed to fetch");
      let result = spec.status !== undefined ? answer(spec.status, spec.body === undefined ? { error: "scripted" } : spec.body) : handle(req);
      let out = typeof result.body === "string" ? result.body : JSON.stringify(result.body);
      if (spec.dropLast && result.body && Array.isArray(result.body.results)) {
        out = JSON.stringify({ results: result.body.results.slice(0, -1) });
      }
      if (spec.notJson) out = "<html><body>Service temporarily rewritten by a proxy</body></html>";
      req.status = result.status;
      st.log.push(["ans", n]);
      const h = { "Content-Type": spec.notJson ? "text/html" : "application/json", ...(spec.headers || {}) };
      if (spec.cut) {
        const bytes = new TextEncoder().encode(out);
        const stream = new ReadableStream({
          start(c) {
            c.enqueue(bytes.slice(0, bytes.length >> 1));
            setTimeout(() => c.error(new TypeError("network error: the connection was reset")), 0);
          },
        });
        return new Response(stream, { status: result.status, headers: h });
      }
      return new Response(out, { status: result.status, headers: h });
    } catch (e) {
      st.log.push([req.aborted ? "abort" : "error", n]);
      throw e;
    } finally {
      st.inFlight -= 1;
      for (const l of entries) st.busy.set(l, st.busy.get(l) - 1);
    }
  };
  return st;
}

// ---------------------------------------------------------------------------------------------
// Platform switches (own properties on the navigator instance, removed by restorePlatform).

export function setOnline(value) {
  Object.defineProperty(navigator, "onLine", { configurable: true, get: () => value });
  globalThis.dispatchEvent(new Event(value ? "online" : "offline"));
}

export function setConnection(value) {
  Object.defineProperty(navigator, "connection", { configurable: true, get: () => value });
}

export function restorePlatform() {
  delete navigator.onLine;
  delete navigator.connection;
}

// ---------------------------------------------------------------------------------------------
// IndexedDB by hand.

export function idbOpen(name, version, upgrade) {
  return new Promise((resolve, reject) => {
    const req = version ? indexedDB.open(name, version) : indexedDB.open(name);
    req.onupgradeneeded = () => upgrade && upgrade(req.result, req.transaction);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => {};
  });
}

// A database exactly as schema v3 of this library left it (git show e06ca50:src/store/schema.rs and
// records.rs): `entries` (key path id, index byUserDate [userId, date]); `events` (key path id,
// indexes ready [userId, rdy, createdAt], retry [userId, due], state [userId, sk, createdAt],
// done [done]); `meta` (out-of-line keys `user:{id}`, `leader:{id}`). `fixture` = { entries, events,
// meta: {key: value} } holding records in the v3 shapes (events without operation/seq, metadata
// without unit).
export async function createV3Db(name, fixture) {
  const db = await idbOpen(name, 3, (db, tx) => {
    const entries = db.createObjectStore("entries", { keyPath: "id" });
    entries.createIndex("byUserDate", ["userId", "date"]);
    const events = db.createObjectStore("events", { keyPath: "id" });
    events.createIndex("ready", ["userId", "rdy", "createdAt"]);
    events.createIndex("retry", ["userId", "due"]);
    events.createIndex("state", ["userId", "sk", "createdAt"]);
    events.createIndex("done", ["done"]);
    const meta = db.createObjectStore("meta");
    for (const e of fixture.entries || []) entries.put(e);
    for (const e of fixture.events || []) events.put(e);
    for (const [k, v] of Object.entries(fixture.meta || {})) meta.put(v, k);
  });
  db.close();
}

// A database of `name` that other code made with our store names but laid out otherwise:
// "v4-keygen": schema v4, `events` with a key generator; "v3-no-index": schema v3 whose `entries`
// has no `byUserDate` index. One entry of u1 in `entries` (to see it left alone).
export async function createOddDb(name, odd) {
  const db = await idbOpen(name, odd === "v4-keygen" ? 4 : 3, (db) => {
    const entries = db.createObjectStore("entries", { keyPath: "id" });
    if (odd !== "v3-no-index") entries.createIndex("byUserDate", ["userId", "date"]);
    const events = db.createObjectStore("events", { keyPath: "id", autoIncrement: odd === "v4-keygen" });
    for (const [n, path] of [["ready", ["userId", "rdy", "createdAt"]], ["retry", ["userId", "due"]], ["state", ["userId", "sk", "createdAt"]], ["done", ["done"]]]) {
      events.createIndex(n, path);
    }
    db.createObjectStore("meta");
    if (odd === "v4-keygen") {
      entries.createIndex("byUserMetricDate", ["userId", "type", "date"]);
      events.createIndex("byEntity", ["entityId", "seq"]);
      db.createObjectStore("tombstones", { keyPath: "id" });
      db.createObjectStore("quarantine").createIndex("byUser", ["userId"]);
    }
    entries.put({ id: "e-1", userId: "u1", type: "weight", quantity: 70, unit: "kg", date: 1795000000000, createdAt: 1795000000000, updatedAt: 1795000000000 });
  });
  db.close();
}

export async function rawGetAll(name, storeName) {
  const db = await idbOpen(name);
  try {
    if (!db.objectStoreNames.contains(storeName)) return [];
    return await new Promise((resolve, reject) => {
      const req = db.transaction(storeName, "readonly").objectStore(storeName).getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    db.close();
  }
}

// { version, stores: { name: [index names] } }
export async function rawSchema(name) {
  const db = await idbOpen(name);
  try {
    const stores = {};
    const names = [...db.objectStoreNames];
    if (names.length) {
      const tx = db.transaction(names, "readonly");
      for (const s of names) stores[s] = [...tx.objectStore(s).indexNames].sort();
    }
    return { version: db.version, stores };
  } finally {
    db.close();
  }
}

// Turns the one retrying event of `user` into `count` (its entry cloned with each), all due at
// `dueAt` (wall clock, ms): a backlog that failed together and comes due together, written in one
// transaction (saving thousands through the API would take most of a test's time).
export async function cloneRetrying(name, user, count, dueAt) {
  const db = await idbOpen(name);
  try {
    const tx = db.transaction(["entries", "events"], "readwrite");
    const events = tx.objectStore("events");
    const entries = tx.objectStore("entries");
    const all = await new Promise((resolve, reject) => {
      const req = events.getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const [event] = all.filter((e) => e.userId === user && e.status === "failed");
    const entry = await new Promise((resolve, reject) => {
      const req = entries.get(event.entityId);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    for (let i = 0; i < count; i++) {
      const id = i === 0 ? event.id : crypto.randomUUID();
      const entityId = i === 0 ? event.entityId : crypto.randomUUID();
      entries.put({ ...entry, id: entityId });
      events.put({ ...event, id, entityId, nextAttemptAt: dueAt, due: dueAt, createdAt: event.createdAt + i });
    }
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// Counts the puts into `storeName` per transaction: `max()` is the most one transaction made.
export function countPuts(storeName) {
  const put = IDBObjectStore.prototype.put;
  const perTx = new WeakMap();
  let max = 0;
  IDBObjectStore.prototype.put = function (...args) {
    if (this.name === storeName) {
      const n = (perTx.get(this.transaction) || 0) + 1;
      perTx.set(this.transaction, n);
      max = Math.max(max, n);
    }
    return put.apply(this, args);
  };
  return { max: () => max, restore: () => { IDBObjectStore.prototype.put = put; } };
}

export function deleteDb(name) {
  return new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = req.onerror = req.onblocked = () => resolve();
  });
}

// ---------------------------------------------------------------------------------------------
// Small things.

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function isInstance(value, ctorName) {
  return value instanceof globalThis[ctorName];
}

export function jsonValue(text) {
  return JSON.parse(text);
}

// Calls `obj[method](...args)` and hands back whatever it returns (a Promise, or a value); a sync
// throw is turned into a rejected Promise so every call can be awaited alike.
export function invoke(obj, method, args) {
  try {
    return Promise.resolve(obj[method](...args));
  } catch (e) {
    return Promise.reject(e);
  }
}

// Like `invoke` but for sync methods: { ok, value } or { ok: false, error }.
export function invokeSync(obj, method, args) {
  try {
    return { ok: true, value: obj[method](...args) };
  } catch (error) {
    return { ok: false, error };
  }
}

// A subscriber that remembers every stats object it is given.
export function recorder() {
  const seen = [];
  const fn = (s) => { seen.push(s); };
  return { fn, seen, healths: () => seen.map((s) => s.health) };
}

// ---------------------------------------------------------------------------------------------
// Helpers of tests/features/regressions.rs. They lived there as inline_js snippets, one module
// each; the page of a suite with more modules to load at start is the one whose start stuck at
// "Loading scripts..." (the features suite, in Chrome and in Firefox), so they are here.

// Arrays no argument takes: one that holds itself, one nested 20,000 deep, and a wide one of
// wide rows (10,001 x 10,001 items, cheap to build: every row is the same array).
export function hostileArrays() {
  const cyclic = [];
  cyclic.push(cyclic);
  let deep = [];
  for (let i = 0; i < 20000; i++) deep = [deep];
  const row = new Array(10001).fill(1);
  const wide = new Array(10001).fill(row);
  return [cyclic, deep, wide];
}
// One string of 2^20 characters, 10,000 times: 10,000 pointers in JS, 10 GB copied one by one.
export function longStrings() {
  return new Array(10000).fill("x".repeat(1 << 20));
}
// Options objects whose typo is not enumerable: a class getter, a defined property, and a typo
// on a prototype-less object the options inherit from.
export function hiddenTypos() {
  class Getter { get userID() { return "u2"; } }
  const defined = Object.defineProperty({}, "userID", { value: "u2" });
  const bare = Object.create(Object.create(null, { userID: { value: "u2", enumerable: true } }));
  return [new Getter(), defined, bare];
}
export function wasmMemoryBytes(memory) {
  return memory.buffer.byteLength;
}

export function polyfillFetch(state) {
  globalThis.fetch = () => {
    state.n = (state.n || 0) + 1;
    // A response-like object of a fetch polyfill: no `instanceof Response`, a `text()` that
    // returns the text itself instead of a promise, a `headers.get` of its own.
    return Promise.resolve({ status: 201, type: "basic", headers: { get: () => null }, text: () => JSON.stringify({ id: "p-" + state.n }) });
  };
}

// Calls made in one turn, each followed at once by a user switch or a mutation of its
// arguments: what each call stored must be what was true when it was made.
export function callsInOneTurn(ob) {
  ob.start("u1");
  const p1 = ob.saveWeight(70);
  ob.start("u2");
  const p2 = ob.saveWeight(71);
  ob.stop();
  const p3 = ob.saveWeight(72);
  ob.start("u3");
  const d = new Date(Date.UTC(2026, 0, 2));
  const o = { userId: "u4", priority: 1, date: d };
  const p4 = ob.saveWeight(73, o);
  o.userId = "u5";
  o.priority = 999;
  d.setTime(Date.UTC(2000, 0, 1));
  const q = ob.entries();
  const ids = [];
  const r = ob.resetForRetry(ids);
  ids.push(42);
  ob.start("u1");
  return Promise.allSettled([p1, p2, p3, p4, q, r]);
}

// Options objects whose `userId` is not an own enumerable data property: each must save for its
// own user ("u2"), as WebIDL reads a dictionary. The last one inherits a typo, to be refused.
export function oddOptionObjects() {
  class Getter { get userId() { return "u2"; } }
  const hidden = {};
  Object.defineProperty(hidden, "userId", { value: "u2", enumerable: false });
  const proxy = new Proxy({ userId: "u2" }, {
    getOwnPropertyDescriptor: (t, k) => ({ ...Reflect.getOwnPropertyDescriptor(t, k), enumerable: false }),
    ownKeys: () => [],
  });
  return [Object.create({ userId: "u2" }), new Getter(), hidden, proxy, Object.create({ userID: "u2" })];
}

// The page runs no code for `ms` (a long task, a debugger pause, a hung script).
export function busy(ms) {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

// A real Date that says it is something else.
export function taggedDate(ms) {
  const d = new Date(ms);
  Object.defineProperty(d, Symbol.toStringTag, { value: "Moment" });
  return d;
}

// Saves every 20 ms (the server answers each after 60 ms, one request at a time) while a
// processNow() runs; resolves with whether processNow settled, and the saves made meanwhile.
export async function processNowUnderLoad(ob, ms) {
  let saves = 0;
  let stop = false;
  const feed = (async () => {
    while (!stop) {
      await ob.saveWeight(70 + (saves % 10));
      saves += 1;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const settled = await Promise.race([ob.processNow().then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);
  stop = true;
  await feed;
  return { settled, saves };
}

export function makeForeignDb(name, version) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(name, version);
    r.onupgradeneeded = () => { r.result.createObjectStore("foo").put("bar", "k"); };
    r.onsuccess = () => { r.result.close(); resolve(); };
    r.onerror = () => reject(r.error);
  });
}
export async function foreignDbIntact(name) {
  const db = await new Promise((resolve, reject) => { const r = indexedDB.open(name); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const v = await new Promise((resolve) => { const g = db.transaction("foo").objectStore("foo").get("k"); g.onsuccess = () => resolve(g.result); });
  const out = [db.version, [...db.objectStoreNames].join(","), v];
  db.close();
  return out;
}
