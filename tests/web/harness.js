// Test doubles and raw IndexedDB helpers for the wasm-bindgen browser tests.

// Replaces globalThis.fetch with a scripted server. `responses` are used in order, then
// `fallback` for every later request. A spec is an object or a function (request, state) => spec:
//   { status = 201, body (string or JSON value; default {"id": "srv-<n>"}), headers,
//     delayMs, hang: true (never answers until aborted), networkError: true }
// Returns the state: { requests, inFlight, maxInFlight }. Each request is recorded as
//   { url (absolute), path (pathname + search), method, headers (lower-case names), body (text or
//     null), redirect, at, aborted }
// The outbox calls fetch with one `Request` object; fetch(url, init) is understood too.
export function stubFetch(responses, fallback) {
  const state = { requests: [], inFlight: 0, maxInFlight: 0 };
  const queue = Array.from(responses || []);
  const aborted = () => new DOMException("The operation was aborted.", "AbortError");
  globalThis.fetch = async (input, init = {}) => {
    const isRequest = typeof input === "object" && input !== null && typeof input.url === "string" && typeof input.clone === "function";
    const url = isRequest ? input.url : new URL(String(input), globalThis.location.href).href;
    const headers = {};
    new Headers(init.headers || (isRequest ? input.headers : {})).forEach((v, k) => { headers[k] = v; });
    let body = init.body;
    if (body === undefined && isRequest) body = await input.clone().text();
    if (body === undefined || body === "") body = null;
    const parsed = new URL(url);
    const request = {
      url, path: parsed.pathname + parsed.search, method: init.method || (isRequest ? input.method : "GET"), headers, body,
      redirect: init.redirect || (isRequest ? input.redirect : "follow"), at: Date.now(), aborted: false,
    };
    const signal = init.signal || (isRequest ? input.signal : undefined);
    state.requests.push(request);
    state.inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    try {
      let spec = queue.length ? queue.shift() : fallback;
      if (typeof spec === "function") spec = await spec(request, state);
      spec = spec || {};
      const wait = (ms) => new Promise((resolve, reject) => {
        const t = ms == null ? null : setTimeout(resolve, ms);
        if (signal) {
          if (signal.aborted) { request.aborted = true; reject(aborted()); }
          signal.addEventListener("abort", () => { clearTimeout(t); request.aborted = true; reject(aborted()); });
        }
      });
      if (spec.delayMs) await wait(spec.delayMs);
      if (spec.hang) await wait(null);
      if (spec.networkError) throw new TypeError("Failed to fetch");
      const text = spec.body === undefined ? JSON.stringify({ id: "srv-" + state.requests.length })
        : typeof spec.body === "string" ? spec.body : JSON.stringify(spec.body);
      const status = spec.status || 201;
      // A null-body status (204, 205, 304) must be built without a body.
      const nullBody = status === 204 || status === 205 || status === 304;
      return new Response(nullBody ? null : text, { status, headers: spec.headers || { "Content-Type": "application/json" } });
    } finally {
      state.inFlight -= 1;
    }
  };
  return state;
}

export function jsonValue(text) {
  return JSON.parse(text);
}

export function idbOpen(name, version, upgrade) {
  return new Promise((resolve, reject) => {
    const req = version ? indexedDB.open(name, version) : indexedDB.open(name);
    req.onupgradeneeded = () => upgrade && upgrade(req.result, req.transaction);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => {};
  });
}

// Creates a database as an older app version left it: v1 = entries store only,
// v2 = plus the byUserDate index. `entries` are written in the upgrade transaction.
export async function createLegacyDb(name, version, entries) {
  const db = await idbOpen(name, version, (db, tx) => {
    const store = db.createObjectStore("entries", { keyPath: "id" });
    if (version >= 2) store.createIndex("byUserDate", ["userId", "date"]);
    for (const e of entries) store.put(e);
  });
  db.close();
}

export async function createDbAtVersion(name, version) {
  const db = await idbOpen(name, version, (db) => db.createObjectStore("other"));
  db.close();
}

export async function rawGetAll(name, storeName) {
  const db = await idbOpen(name);
  try {
    return await new Promise((resolve, reject) => {
      const req = db.transaction(storeName, "readonly").objectStore(storeName).getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  } finally {
    db.close();
  }
}

// One record of a store (undefined when absent).
export async function rawGet(name, storeName, key) {
  return rawRun(name, storeName, "readonly", (store) => store.get(key));
}

// Writes a record as another context (or an older or newer app) would have: `key` only for
// stores with out-of-line keys (meta, quarantine).
export async function rawPut(name, storeName, value, key) {
  await rawRun(name, storeName, "readwrite", (store) => (key === undefined ? store.put(value) : store.put(value, key)));
}

export async function rawDelete(name, storeName, key) {
  await rawRun(name, storeName, "readwrite", (store) => store.delete(key));
}

// Runs one request in its own transaction; resolves with its result once the transaction committed.
async function rawRun(name, storeName, mode, makeRequest) {
  const db = await idbOpen(name);
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(storeName, mode);
      const req = makeRequest(tx.objectStore(storeName));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => reject(tx.error || req.error);
    });
  } finally {
    db.close();
  }
}

export async function rawVersion(name) {
  const db = await idbOpen(name);
  const v = db.version;
  db.close();
  return v;
}

// Opens the database at a higher version (as a newer app in another tab would) and closes it.
export async function upgradeElsewhere(name, version) {
  const db = await idbOpen(name, version, () => {});
  db.close();
}

export function deleteDb(name) {
  return new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = req.onerror = req.onblocked = () => resolve();
  });
}

// Names of the Web Locks held in this origin that start with `prefix` ([] without Web Locks).
export async function heldLocks(prefix) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks) return [];
  const { held } = await locks.query();
  return held.map((l) => l.name).filter((n) => n.startsWith(prefix));
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function isInstance(value, ctorName) {
  return value instanceof globalThis[ctorName];
}

// Records console output of the library while `run` executes.
export function captureConsole() {
  const lines = [];
  const orig = {};
  for (const level of ["debug", "info", "warn", "log", "error"]) {
    orig[level] = console[level];
    console[level] = (...args) => { lines.push(level + " " + args.join(" ")); };
  }
  return {
    lines: () => lines.slice(),
    restore: () => { Object.assign(console, orig); },
  };
}

export function setOnline(value) {
  Object.defineProperty(Navigator.prototype, "onLine", { configurable: true, get: () => value });
  if (value) globalThis.dispatchEvent(new Event("online"));
}

/**
 * Values made in another realm (a same-origin iframe), the way an app's iframe or a test
 * driver's script hands them over: `instanceof` this realm's Date/Function/Object is false.
 */
export function foreignRealm() {
  const frame = document.createElement("iframe");
  document.body.append(frame);
  const w = frame.contentWindow;
  return {
    json: (text) => w.JSON.parse(text),
    date: (ms) => new w.Date(ms),
    fn: (...args) => new w.Function(...args),
    array: (...items) => w.Array.of(...items),
    isForeign: (v) => !(v instanceof Object),
    remove: () => frame.remove(),
  };
}
