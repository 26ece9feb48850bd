// Test doubles and raw IndexedDB helpers for the wasm-bindgen browser tests.

// Replaces globalThis.fetch with a scripted server. `responses` are used in order, then
// `fallback` for every later request. A spec is an object or a function (request) => spec:
//   { status = 201, body (string or JSON value; default {"id": "srv-<n>"}), headers,
//     delayMs, hang: true (never answers until aborted), networkError: true }
// Returns the state: { requests, inFlight, maxInFlight }.
export function stubFetch(responses, fallback) {
  const state = { requests: [], inFlight: 0, maxInFlight: 0 };
  const queue = Array.from(responses || []);
  const aborted = () => new DOMException("The operation was aborted.", "AbortError");
  globalThis.fetch = async (url, init = {}) => {
    const headers = {};
    new Headers(init.headers || {}).forEach((v, k) => { headers[k] = v; });
    const request = { url: String(url), method: init.method, headers, body: init.body, at: Date.now(), aborted: false };
    state.requests.push(request);
    state.inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    try {
      let spec = queue.length ? queue.shift() : fallback;
      if (typeof spec === "function") spec = await spec(request, state);
      spec = spec || {};
      const signal = init.signal;
      const wait = (ms) => new Promise((resolve, reject) => {
        const t = ms == null ? null : setTimeout(resolve, ms);
        if (signal) signal.addEventListener("abort", () => { clearTimeout(t); request.aborted = true; reject(aborted()); });
      });
      if (spec.delayMs) await wait(spec.delayMs);
      if (spec.hang) await wait(null);
      if (spec.networkError) throw new TypeError("Failed to fetch");
      const body = spec.body === undefined ? JSON.stringify({ id: "srv-" + state.requests.length })
        : typeof spec.body === "string" ? spec.body : JSON.stringify(spec.body);
      return new Response(body, { status: spec.status || 201, headers: spec.headers || { "Content-Type": "application/json" } });
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
