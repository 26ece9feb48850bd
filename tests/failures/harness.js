// Test doubles for the failure-mode suite (tests/failures.rs): a scripted fetch that behaves like a
// browser's (it follows redirects unless the request says `redirect: "manual"`), an overridable wall
// clock, Web Locks held from outside, raw IndexedDB access, and a trap for errors that reach the page.
// Nothing here depends on the library: the same file drives the old code and the new.

// ---------------------------------------------------------------------------------------------
// The wall clock. `Date.now()` is what the library stores and shows; `performance.now()` (not
// touched) is the monotonic clock it waits by. `setClockOffset(ms)` moves `Date.now` by `ms`.

const realDateNow = Date.now.bind(Date);
let clockOffset = 0;
Date.now = () => realDateNow() + clockOffset;

export function setClockOffset(ms) {
  clockOffset = ms;
}

// ---------------------------------------------------------------------------------------------
// The scripted server.
//
// `stubFetch(responses, fallback)` replaces globalThis.fetch. `responses` are used in order, then
// `stub.fallback` (settable) for every later request. A spec is an object, or a function
// (request, stub) => spec:
//   { status = 201, body (string or JSON value; default {"id": "srv-<n>"}), headers,
//     hold: "name"  (no answer until stub.release("name"), or until aborted),
//     hang: true    (no answer until aborted), networkError: true,
//     redirect: 301|302|303|307|308, location = "/elsewhere", opaque: true }
// A redirect is answered as a browser does: with `redirect: "follow"` (fetch's default) it is
// followed (a second request to `location`, recorded, answered 201 {"id": "elsewhere-<n>"}; 301/302
// turn a POST into a GET without body, 303 anything but HEAD); with `redirect: "manual"` the page
// gets an opaque-redirect response (status 0), or with `opaque: false` the 3xx response itself.
//
// Each request is recorded: { url, path, method, headers, auth, key, body (parsed JSON, else text),
// redirectMode, aborted, answered }.

function aborted() {
  return new DOMException("The operation was aborted.", "AbortError");
}

function parse(text) {
  if (text == null || text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function stubFetch(responses, fallback) {
  const stub = {
    requests: [],
    inFlight: 0,
    maxInFlight: 0,
    fallback,
    holds: new Map(),
    elsewhere: 0,
    release(name) {
      const h = stub.holds.get(name);
      stub.holds.delete(name);
      if (h) for (const r of h) r();
      else stub.holds.set(name, "released");
    },
    isHeld(name) {
      const h = stub.holds.get(name);
      return Array.isArray(h) && h.length > 0;
    },
    byKey(key) {
      return stub.requests.filter((r) => r.key === key && !r.path.includes("/elsewhere")).length;
    },
    keys() {
      return stub.requests.filter((r) => r.key && !r.path.includes("/elsewhere")).map((r) => r.key);
    },
    to(part) {
      return stub.requests.filter((r) => r.path.includes(part)).length;
    },
    authOf(auth) {
      return stub.requests.filter((r) => r.auth === auth).map((r) => r.key);
    },
  };
  const queue = Array.from(responses || []);

  async function record(input, init) {
    const isRequest = typeof Request === "function" && input instanceof Request;
    const url = new URL(isRequest ? input.url : String(input), location.href).href;
    const headers = {};
    new Headers(isRequest ? input.headers : init.headers || {}).forEach((v, k) => { headers[k] = v; });
    let body = init.body;
    if (isRequest && body === undefined && input.method !== "GET" && input.method !== "HEAD") {
      body = await input.clone().text();
    }
    const request = {
      url,
      path: new URL(url).pathname,
      method: (isRequest ? input.method : init.method) || "GET",
      headers,
      auth: headers.authorization || null,
      key: headers["idempotency-key"] || null,
      body: parse(body),
      rawBody: body,
      redirectMode: init.redirect || (isRequest ? input.redirect : undefined) || "follow",
      signal: init.signal || (isRequest ? input.signal : undefined),
      aborted: false,
      answered: false,
    };
    stub.requests.push(request);
    return request;
  }

  function wait(request, hold) {
    return new Promise((resolve, reject) => {
      const signal = request.signal;
      if (signal && signal.aborted) {
        request.aborted = true;
        reject(aborted());
        return;
      }
      if (signal) signal.addEventListener("abort", () => { request.aborted = true; reject(aborted()); });
      if (hold) {
        const h = stub.holds.get(hold);
        if (h === "released") {
          stub.holds.delete(hold);
          resolve();
        } else if (Array.isArray(h)) h.push(resolve);
        else stub.holds.set(hold, [resolve]);
      }
    });
  }

  globalThis.fetch = async (input, init = {}) => {
    const request = await record(input, init);
    stub.inFlight += 1;
    stub.maxInFlight = Math.max(stub.maxInFlight, stub.inFlight);
    try {
      let spec = queue.length ? queue.shift() : stub.fallback;
      if (typeof spec === "function") spec = await spec(request, stub);
      spec = spec || {};
      if (spec.delayMs) await Promise.race([new Promise((r) => setTimeout(r, spec.delayMs)), wait(request, null)]);
      if (spec.hold) await wait(request, spec.hold);
      if (spec.hang) await wait(request, null);
      if (spec.networkError) throw new TypeError("Failed to fetch");
      request.answered = true;
      if (spec.redirect) {
        const to = spec.location || "/elsewhere";
        if (request.redirectMode === "manual") {
          if (spec.opaque === false) {
            return new Response(null, { status: spec.redirect, headers: { Location: to } });
          }
          // What a browser hands the page for a redirect it was told not to follow.
          return { type: "opaqueredirect", status: 0, ok: false, redirected: false, url: request.url, headers: new Headers(), text: async () => "", json: async () => { throw new SyntaxError("no body"); } };
        }
        if (request.redirectMode === "error") throw new TypeError("Failed to fetch (redirect)");
        const toGet = spec.redirect === 303 || ((spec.redirect === 301 || spec.redirect === 302) && request.method === "POST");
        const second = {
          url: new URL(to, request.url).href,
          path: new URL(to, request.url).pathname,
          method: toGet ? "GET" : request.method,
          headers: request.headers,
          auth: request.auth,
          key: request.key,
          body: toGet ? undefined : request.body,
          redirectMode: request.redirectMode,
          aborted: false,
          answered: true,
        };
        stub.requests.push(second);
        stub.elsewhere += 1;
        const r = new Response(JSON.stringify({ id: "elsewhere-" + stub.elsewhere }), { status: 201, headers: { "Content-Type": "application/json" } });
        return r;
      }
      if (spec.bodyPad) {
        // A huge body (`bodyPrefix` then `bodyPad` characters), handed over as a string (no
        // Response: encoding tens of megabytes took Firefox longer than the request timeout).
        const text = (spec.bodyPrefix || "") + "x".repeat(spec.bodyPad);
        return { type: "basic", status: spec.status || 201, ok: true, headers: new Headers(), text: async () => text };
      }
      const body = spec.body === undefined ? JSON.stringify({ id: "srv-" + stub.requests.length })
        : typeof spec.body === "string" ? spec.body : JSON.stringify(spec.body);
      return new Response(spec.status === 204 || spec.status === 304 ? null : body, { status: spec.status || 201, headers: spec.headers || { "Content-Type": "application/json" } });
    } finally {
      stub.inFlight -= 1;
    }
  };
  return stub;
}

export function jsonValue(text) {
  return JSON.parse(text);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Settles `promise` or gives up after `ms`: resolves with { state: "resolved" | "rejected" |
// "pending", value }, so a test can fail (not hang) when a call never settles.
export function bounded(promise, ms) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve({ state: "pending" }), ms); });
  const settled = Promise.resolve(promise).then((value) => ({ state: "resolved", value }), (value) => ({ state: "rejected", value }));
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

export function isInstance(value, ctorName) {
  return value instanceof globalThis[ctorName];
}

// ---------------------------------------------------------------------------------------------
// The app's token function, switchable: mode "ok" answers `token`, "hang" never settles,
// "reject" rejects. `calls` counts calls; `users` lists the userId of each.

export function tokenSwitch(token) {
  const t = { mode: "ok", token, calls: 0, users: [] };
  t.fn = (userId) => {
    t.calls += 1;
    t.users.push(userId);
    if (t.mode === "hang") return new Promise(() => {});
    if (t.mode === "reject") return Promise.reject(new Error("no session"));
    // A promise `Promise.resolve` cannot adopt: its `constructor` getter throws.
    if (t.mode === "badConstructor") {
      const p = Promise.resolve(t.token);
      Object.defineProperty(p, "constructor", { get() { throw new Error("no constructor here"); } });
      return p;
    }
    // A promise whose own `then` throws (a probe found it trapped the wasm in Chromium).
    if (t.mode === "throwingThen") {
      const p = Promise.resolve(t.token);
      p.then = () => { throw new Error("no then here"); };
      return p;
    }
    // An error message of 5 MB, with the token in it at the end.
    if (t.mode === "hugeError") throw new Error("x".repeat(5000000) + " " + t.token);
    return Promise.resolve(t.token);
  };
  return t;
}

// ---------------------------------------------------------------------------------------------
// The network as the platform reports it.

export function setOnline(value) {
  Object.defineProperty(Navigator.prototype, "onLine", { configurable: true, get: () => value });
  globalThis.dispatchEvent(new Event(value ? "online" : "offline"));
}

export function restoreOnline() {
  delete Navigator.prototype.onLine;
  const d = Object.getOwnPropertyDescriptor(Navigator.prototype, "onLine");
  if (!d || !d.get) Object.defineProperty(Navigator.prototype, "onLine", { configurable: true, get: () => true });
}

// ---------------------------------------------------------------------------------------------
// Errors that reach the page (a closure run after it was dropped throws into the event loop).

const pageErrors = [];
globalThis.addEventListener("error", (e) => { pageErrors.push("error: " + (e.message || (e.error && e.error.message) || String(e.error))); });
globalThis.addEventListener("unhandledrejection", (e) => {
  const r = e.reason;
  pageErrors.push("unhandledrejection: " + (r && r.message ? r.message : String(r)));
});

export function pageErrorsSince(n) {
  return pageErrors.slice(n);
}

export function pageErrorCount() {
  return pageErrors.length;
}

// Console output while a test runs (the library's warnings name what went wrong).
export function captureConsole() {
  const lines = [];
  const orig = {};
  for (const level of ["debug", "info", "warn", "log", "error"]) {
    orig[level] = console[level];
    // Recorded and passed on (a test's own panic message goes to console.error).
    console[level] = (...args) => { lines.push(level + " " + args.map(String).join(" ")); orig[level].apply(console, args); };
  }
  return { lines: () => lines.slice(), restore: () => { Object.assign(console, orig); } };
}

// ---------------------------------------------------------------------------------------------
// Web Locks from outside the library: another context holding, or stealing, a lock.

export function holdLock(name, steal) {
  let release;
  const released = new Promise((r) => { release = r; });
  const h = { granted: false, lost: false, release: () => release() };
  const options = steal ? { steal: true } : {};
  h.done = navigator.locks.request(name, options, () => { h.granted = true; return released; }).catch(() => { h.lost = true; });
  return h;
}

const realLocksQuery = globalThis.LockManager && LockManager.prototype.query;

export async function heldLocks() {
  const s = await realLocksQuery.call(navigator.locks);
  return { held: s.held.map((l) => l.name), pending: s.pending.map((l) => l.name) };
}

// `navigator.locks.query()` that never answers (`on`), as on a main thread stalled past the
// library's one-second wait for it, or the real one again. A panic in wasm aborts without running
// drops, so the hang also ends by itself after 20 s: a failed test never leaves it to the next.
let locksQueryRestore = null;
export function hangLocksQuery(on) {
  clearTimeout(locksQueryRestore);
  if (on) {
    navigator.locks.query = () => new Promise(() => {});
    locksQueryRestore = setTimeout(() => hangLocksQuery(false), 20000);
  } else delete navigator.locks.query;
}

// `navigator.locks.query()` answered late: the lock manager takes its snapshot when asked, and
// the answer reaches the page only at `release()` (a main thread frozen in between). `asked`
// counts the questions.
export function delayLocksQuery() {
  let open;
  const gate = new Promise((r) => { open = r; });
  const h = {
    asked: 0,
    release() {
      clearTimeout(timer);
      delete navigator.locks.query;
      open();
    },
  };
  // A failed test never leaves it to the next.
  const timer = setTimeout(() => h.release(), 30000);
  navigator.locks.query = () => {
    h.asked++;
    const answer = realLocksQuery.call(navigator.locks);
    return gate.then(() => answer);
  };
  return h;
}

// ---------------------------------------------------------------------------------------------
// Raw IndexedDB: what another version of the app, or the browser, does to the database.

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export function idbOpen(name, version, upgrade) {
  return new Promise((resolve, reject) => {
    const r = version ? indexedDB.open(name, version) : indexedDB.open(name);
    r.onupgradeneeded = () => upgrade && upgrade(r.result, r.transaction);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => {};
  });
}

async function withStore(name, store, mode, f) {
  const db = await idbOpen(name);
  try {
    const tx = db.transaction(store, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
    });
    const value = await f(tx.objectStore(store));
    await done;
    return value;
  } finally {
    db.close();
  }
}

export function rawGetAll(name, store) {
  return withStore(name, store, "readonly", (s) => req(s.getAll()));
}

export function rawGet(name, store, key) {
  return withStore(name, store, "readonly", (s) => req(s.get(key)));
}

export function rawPut(name, store, value, key) {
  return withStore(name, store, "readwrite", (s) => req(key === undefined ? s.put(value) : s.put(value, key)));
}

export function rawDelete(name, store, key) {
  return withStore(name, store, "readwrite", (s) => req(s.delete(key)));
}

export function rawKeys(name, store) {
  return withStore(name, store, "readonly", (s) => req(s.getAllKeys()));
}

export async function rawVersion(name) {
  const db = await idbOpen(name);
  const v = db.version;
  db.close();
  return v;
}

export async function rawStores(name) {
  const db = await idbOpen(name);
  const names = Array.from(db.objectStoreNames);
  db.close();
  return names;
}

// A database an older app version (schema v2: entries with the byUserDate index) left behind.
export async function createLegacyDb(name, entries) {
  const db = await idbOpen(name, 2, (db) => {
    const store = db.createObjectStore("entries", { keyPath: "id" });
    store.createIndex("byUserDate", ["userId", "date"]);
    for (const e of entries) store.put(e);
  });
  db.close();
}

// A connection at an old version that never lets go (its versionchange handler does nothing):
// another app version's tab that is busy or broken. Returns { close }.
export async function stubbornConnection(name, version) {
  const db = await idbOpen(name, version, (db) => { if (!db.objectStoreNames.contains("entries")) db.createObjectStore("entries", { keyPath: "id" }); });
  db.onversionchange = () => {};
  return { close: () => db.close() };
}

// Another tab's long readwrite transaction over every store of `name`, kept alive for `ms` by
// a chain of reads (a tab busy in a long import, or a broken one). Resolves once it is running;
// `ended` resolves when it is over.
export async function holdTransaction(name, ms) {
  const db = await idbOpen(name);
  const tx = db.transaction([...db.objectStoreNames], "readwrite");
  const store = tx.objectStore(db.objectStoreNames[0]);
  const until = performance.now() + ms;
  const ended = new Promise((resolve) => { tx.oncomplete = tx.onabort = tx.onerror = () => { db.close(); resolve(); }; });
  await new Promise((running) => {
    const spin = () => { const r = store.get("none"); r.onsuccess = () => { running(); if (performance.now() < until) spin(); }; };
    spin();
  });
  return { ended };
}

// Orders transactions by the rule IndexedDB keeps (transactions whose scopes overlap run in the
// order they were created, whatever the connection): holds every store of `name` in a readwrite
// transaction until `release()`, so a transaction the code under test creates meanwhile waits
// behind it; `write(store, key, patch)` creates, right then, a readwrite transaction that merges
// `patch` into that record: it runs after the waiting one and before any created later.
// Resolves once the hold is running; `write` returns a promise of its commit.
export async function gate(name) {
  const db = await idbOpen(name);
  const tx = db.transaction([...db.objectStoreNames], "readwrite");
  const store = tx.objectStore(db.objectStoreNames[0]);
  let held = true;
  await new Promise((running) => {
    const spin = () => { const r = store.get("none"); r.onsuccess = () => { running(); if (held) spin(); }; };
    spin();
  });
  const other = await idbOpen(name);
  return {
    release: () => { held = false; },
    write: (storeName, key, patch) => new Promise((resolve, reject) => {
      const w = other.transaction(storeName, "readwrite");
      const s = w.objectStore(storeName);
      const r = s.get(key);
      r.onsuccess = () => s.put(Object.assign(r.result, patch));
      w.oncomplete = () => resolve();
      w.onabort = () => reject(w.error || new Error("the gated write aborted"));
    }),
    close: () => { db.close(); other.close(); },
  };
}

// Resolves when the page next creates a transaction over `store` in `mode` (the code under test
// asked for it; with a `gate` held, it now waits behind it).
export function nextTransaction(store, mode) {
  return new Promise((resolve) => {
    const original = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (names, m, options) {
      const tx = original.call(this, names, m, options);
      if ((m || "readonly") === mode && [].concat(names).includes(store)) {
        IDBDatabase.prototype.transaction = original;
        resolve();
      }
      return tx;
    };
  });
}

// Makes the page's next transaction over exactly [`store`] in `mode` fail as it is created (as a
// browser refusing it would), once.
export function failNextTransaction(store, mode) {
  const original = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (names, m, options) {
    const list = [].concat(names);
    if ((m || "readonly") === mode && list.length === 1 && list[0] === store) {
      IDBDatabase.prototype.transaction = original;
      throw new DOMException("refused by the test", "NotFoundError");
    }
    return original.call(this, names, m, options);
  };
}

// Makes every full read of the events in state `state` (an unbounded `getAll` over one user's
// `[userId, state, ..]` range of the state index; 3 = retrying) fail as it is made, until the
// returned function is called.
export function failStateReads(state) {
  const original = IDBIndex.prototype.getAll;
  IDBIndex.prototype.getAll = function (query, count) {
    if (count === undefined && query instanceof IDBKeyRange && Array.isArray(query.lower) && query.lower[1] === state) {
      throw new DOMException("refused by the test", "UnknownError");
    }
    return original.call(this, query, count);
  };
  const restore = () => {
    clearTimeout(timer);
    IDBIndex.prototype.getAll = original;
  };
  // A failed test never leaves it to the next.
  const timer = setTimeout(restore, 30000);
  return restore;
}

// Makes the page's next `put` into object store `store` (under `key`, if given) throw a
// DOMException named `name` (default "UnknownError"), as a browser refusing the write would, once.
// Returns the function that takes the hook off before (else it goes after 30 s).
export function failNextPut(store, key, name) {
  const original = IDBObjectStore.prototype.put;
  const restore = () => {
    clearTimeout(timer);
    IDBObjectStore.prototype.put = original;
  };
  IDBObjectStore.prototype.put = function (...args) {
    if (this.name === store && (key === undefined || args[1] === key)) {
      restore();
      throw new DOMException("refused by the test", name || "UnknownError");
    }
    return original.apply(this, args);
  };
  // A failed test never leaves it to the next.
  const timer = setTimeout(restore, 30000);
  return restore;
}

// Makes every `indexedDB.open` request drop its `onsuccess` handler (a wedged storage backend,
// or a wrapper that swallows it): the browser upgrades, then the page hears nothing. Until the
// returned function is called (or 30 s pass).
// It swallows the library's own late `onsuccess` (which closes a connection that opens after the
// open gave up) too, so `restore` closes the connections those requests opened (review AC, AC-4).
export function swallowOpenSuccess() {
  const original = IDBFactory.prototype.open;
  const wrapped = [];
  IDBFactory.prototype.open = function (...args) {
    const r = original.apply(this, args);
    Object.defineProperty(r, "onsuccess", { set() {}, get() { return null; } });
    wrapped.push(r);
    return r;
  };
  const restore = () => {
    clearTimeout(timer);
    IDBFactory.prototype.open = original;
    for (const r of wrapped.splice(0)) if (r.readyState === "done" && r.result) r.result.close();
  };
  const timer = setTimeout(restore, 30000);
  return restore;
}

// Deletes the database the way site-data clearing (or this app's other code) does; resolves once
// the delete went through ("success") or reports "blocked" if it is still waiting after `ms`.
export function wipeDb(name, ms) {
  return new Promise((resolve) => {
    const r = indexedDB.deleteDatabase(name);
    let blocked = false;
    r.onblocked = () => { blocked = true; };
    r.onsuccess = () => resolve("success");
    r.onerror = () => resolve("error: " + (r.error && r.error.message));
    setTimeout(() => resolve(blocked ? "blocked" : "pending"), ms || 5000);
  });
}

export function deleteDb(name) {
  return new Promise((resolve) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = r.onerror = r.onblocked = () => resolve();
  });
}

// Page Lifecycle: the page is about to be frozen (a frozen page runs no more code, so whatever
// the outbox releases must be released synchronously, in this event).
export function dispatchFreeze() {
  document.dispatchEvent(new Event("freeze"));
}
