// Platform glue for progress-outbox: the few browser calls that are shorter, faster and smaller
// in JS than through wasm-bindgen bindings. Each is one JS call from Rust per operation.
// Everything reaches the platform through the global scope (pages, workers, service workers).

/** A UUID v4 (crypto.randomUUID where the context is secure, getRandomValues otherwise). */
export function newId() {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === "function") return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The time of a Date from any realm (its internal slot, not `instanceof`), else undefined. */
export function dateTime(v) {
  return Object.prototype.toString.call(v) === "[object Date]" ? Date.prototype.getTime.call(v) : undefined;
}

/**
 * The save transaction: the entry and its event added to their stores in one readwrite
 * transaction with strict durability. Resolves once committed; rejects with the first failed
 * request's error (an id collision, a quota error) after the abort, so nothing was stored.
 */
export function saveRecords(db, entry, event) {
  return new Promise((resolve, reject) => {
    let tx;
    let first = null;
    try {
      tx = db.transaction(["entries", "events"], "readwrite", { durability: "strict" });
      tx.onerror = (e) => { first = first || e.target.error; };
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(first || tx.error || new DOMException("transaction aborted", "AbortError"));
      tx.objectStore("entries").add(entry);
      tx.objectStore("events").add(event);
      if (tx.commit) tx.commit();
    } catch (e) {
      try { if (tx) tx.abort(); } catch { /* already finished */ }
      reject(e);
    }
  });
}

function describe(e) {
  return e instanceof Error || (e && typeof e.name === "string" && typeof e.message === "string") ? `${e.name}: ${e.message}` : typeof e === "string" ? e : "a non-Error value";
}

function kind(v) {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  if (typeof v === "string") return "an empty string";
  return typeof v === "number" ? "a number" : typeof v === "function" ? "a function" : "an object";
}

/** Calls the app's token function: { token } or { error } (never the token's value in an error). */
export async function callToken(fn, userId, refresh) {
  let value;
  try {
    value = fn(userId, { refresh });
  } catch (e) {
    return { error: `the token function threw (${describe(e)}); will retry` };
  }
  if (value && typeof value.then === "function") {
    try {
      value = await value;
    } catch (e) {
      return { error: `the token function's promise rejected (${describe(e)}); will retry` };
    }
  }
  if (typeof value === "string" && value) return { token: value };
  return { error: `the token function returned ${kind(value)} instead of a token string; will retry` };
}

/**
 * One upload (CONTRACT §2) through the global fetch, looked up at each call (apps and tests may
 * replace it). Never throws. Resolves with
 *   { kind: "response", status, retryAfter, body (first 500 chars), id (string or null) }
 *   { kind: "network", message } | { kind: "timeout" }
 */
export async function upload(endpoint, key, token, timeoutMs, localId, type, quantity, unit, date) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs);
  try {
    const headers = { "Content-Type": "application/json", "Idempotency-Key": key };
    if (token !== undefined && token !== null) headers.Authorization = `Bearer ${token}`;
    // The global binding, looked up now (apps and tests may replace it) and called without a
    // receiver: `globalThis.fetch.call(globalThis, ...)` throws "does not implement interface
    // Window" in Firefox when the module was loaded from another realm's script.
    if (typeof fetch !== "function") return { kind: "network", message: "no global fetch in this context" };
    let res;
    try {
      res = await fetch(endpoint, {
        method: "POST", headers, signal: controller.signal, cache: "no-store",
        body: JSON.stringify({ localId, type, quantity, unit, date }),
      });
    } catch (e) {
      return timedOut ? { kind: "timeout" } : { kind: "network", message: describe(e) };
    }
    if (!res || typeof res.status !== "number") return { kind: "network", message: "fetch resolved to something that is not a Response" };
    let text = "";
    try {
      text = await res.text();
    } catch {
      if (timedOut) return { kind: "timeout" };
      // The status arrived; a body cut off mid-way still tells us what happened.
    }
    let id = null;
    if (res.status >= 200 && res.status < 300) {
      try {
        const v = JSON.parse(text);
        if (v && typeof v === "object") {
          if (typeof v.id === "string" && v.id) id = v.id;
          else if (typeof v.id === "number" && Number.isFinite(v.id)) id = String(v.id);
        }
      } catch { /* not JSON: no id */ }
    }
    return { kind: "response", status: res.status, retryAfter: res.headers.get("Retry-After"), body: text.slice(0, 500), id };
  } finally {
    clearTimeout(timer);
  }
}
