// Service worker of the demo PWA (a module worker). Three jobs:
// 1. App shell: cached at install, served network-first with the cache as fallback, so the app
//    opens with no network after the first visit and still picks up new code when online.
// 2. Background sync: the outbox runs here too. A `sync` event (Background Sync, where the
//    browser has it) runs `processNow()`; without Background Sync the worker starts processing
//    when it starts up. Either way it is one more contender for the upload lock: it uploads only
//    when no tab does (e.g. after the last tab closed), never alongside one.
// 3. Tokens arrive from the page by postMessage and live in memory only, never in storage.
import init, { Outbox } from "/pkg/index.js";
import { outboxSettings } from "/settings.js";

const SHELL_CACHE = "progress-shell-v7";
const SHELL = ["/", "/index.html", "/app.js", "/settings.js", "/style.css", "/manifest.webmanifest", "/icons/icon-192.png", "/icons/icon-512.png"];

/** The app files plus every module of the package (`pkg/files.json`, written by the build). */
async function shellFiles() {
  try {
    return SHELL.concat(await (await fetch("/pkg/files.json", { cache: "no-store" })).json());
  } catch {
    return SHELL.concat(["/pkg/index.js", "/pkg/progress_outbox.js", "/pkg/progress_outbox_bg.wasm"]);
  }
}
const SYNC_TAG = "progress-outbox";

// ---------- app shell ----------
self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(await shellFiles());
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== SHELL_CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL_CACHE);
    try {
      const fresh = await fetch(event.request);
      // One copy of the page whatever its query (?fast=1&db=...), and a full answer only; a
      // refused write (quota) costs the cache, never the page.
      const key = url.pathname === "/index.html" || url.pathname === "/" ? "/" : event.request;
      if (fresh.ok && fresh.status === 200) event.waitUntil(cache.put(key, fresh.clone()).catch(() => {}));
      return fresh;
    } catch (err) {
      const cached = await cache.match(event.request, { ignoreSearch: true }) || (event.request.mode === "navigate" ? await cache.match("/") : undefined);
      if (cached) return cached;
      throw err;
    }
  })());
});

// ---------- who is logged in (the user id and demo settings only; no token) ----------
const state = {
  db: null,
  async open() {
    if (this.db) return this.db;
    this.db = await new Promise((resolve, reject) => {
      const req = indexedDB.open("progress-demo-sw", 1);
      req.onupgradeneeded = () => req.result.createObjectStore("kv");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return this.db;
  },
  async get() {
    const db = await this.open();
    return new Promise((resolve) => {
      const req = db.transaction("kv").objectStore("kv").get("session");
      req.onsuccess = () => resolve(req.result || null);
      req.onerror = () => resolve(null);
    });
  },
  async set(value) {
    const db = await this.open();
    await new Promise((resolve) => {
      // Strict: a crash right after a login must not leave the worker with the one before.
      const tx = db.transaction("kv", "readwrite", { durability: "strict" });
      if (value) tx.objectStore("kv").put(value, "session");
      else tx.objectStore("kv").delete("session");
      tx.oncomplete = tx.onerror = () => resolve();
    });
  },
};

// ---------- tokens: memory only, asked from an open page when missing ----------
const tokens = new Map(); // userId -> { token, exp }
const tokenWaiters = new Map(); // userId -> [resolve]

async function tokenFor(userId, hint) {
  const hit = tokens.get(userId);
  if (hit && !(hint && hint.refresh) && hit.exp - Date.now() > 30_000) return hit.token;
  const pages = await self.clients.matchAll({ type: "window" });
  if (!pages.length) throw new Error("no open page can provide a login token");
  const answer = new Promise((resolve, reject) => {
    tokenWaiters.set(userId, [...(tokenWaiters.get(userId) || []), resolve]);
    setTimeout(() => reject(new Error("no page answered the token request")), 5000);
  });
  for (const p of pages) p.postMessage({ type: "need-token", userId, refresh: !!(hint && hint.refresh) });
  return answer;
}

// ---------- the outbox ----------
// Opened with the settings of the page that logged in last (its ?db=, ?fast and ?batch): a page
// with other settings closes this one and opens its own, so the worker always uploads the
// database the pages write, the way they would.
let current = null; // { key, ready }
function outbox(settings) {
  const key = JSON.stringify(outboxSettings(settings || {})); // what the settings change, and nothing else
  if (current && current.key !== key) {
    const old = current.ready;
    current = null;
    old.then((o) => o.close()).catch(() => {});
  }
  if (!current) {
    const ready = (async () => {
      await init();
      // Configured like the pages (www/settings.js): of the contexts sharing a dbName, the one
      // that uploads uses its own endpoints and token source.
      return Outbox.open({
        ...outboxSettings(settings || {}),
        token: tokenFor, // called with the userId whose events upload: asks a page for that user's token
        log: "info",
        onVersionChange: () => { if (current && current.ready === ready) current = null; },
      });
    })();
    current = { key, ready };
    ready.catch(() => { if (current && current.ready === ready) current = null; });
  }
  return current.ready;
}

async function startFor(session) {
  const o = await outbox(session);
  if (session && session.userId) o.start(session.userId);
  return o;
}

self.addEventListener("message", (event) => {
  const msg = event.data || {};
  if (msg.type === "token") {
    tokens.set(msg.userId, { token: msg.token, exp: msg.exp });
    for (const resolve of tokenWaiters.get(msg.userId) || []) resolve(msg.token);
    tokenWaiters.delete(msg.userId);
  } else if (msg.type === "user") {
    const session = { userId: msg.userId, fast: !!msg.fast, batch: !!msg.batch, db: typeof msg.db === "string" && msg.db ? msg.db : null };
    event.waitUntil(state.set(session).then(() => startFor(session)));
  } else if (msg.type === "logout") {
    tokens.clear();
    event.waitUntil(state.set(null).then(async () => { if (current) (await current.ready).stop(); }).catch(() => {}));
  }
});

self.addEventListener("sync", (event) => {
  if (event.tag !== SYNC_TAG) return;
  event.waitUntil((async () => {
    if (!(await state.get())) return;
    // Each call on the outbox of the session stored now: a page that logs in with other settings
    // meanwhile closes the one this event began with.
    const current = async () => {
      const session = await state.get();
      if (!session) throw new Error("logged out during the sync");
      return startFor(session);
    };
    const onCurrent = async (call) => {
      try {
        return await call(await current());
      } catch (e) {
        if (e && e.code === "CLOSED") return call(await current());
        throw e;
      }
    };
    let report = await onCurrent((o) => o.processNow()); // runs here, or in the tab that uploads for this user
    // processNow() answers within 9 s; a pass still going (a slow server) keeps the worker alive.
    while (!report.finished) report = await onCurrent((o) => o.processNow());
    const s = await onCurrent((o) => o.stats());
    // Ask the browser to fire `sync` again later while work remains (it backs off on its own).
    const left = s.pending + s.processing + s.retrying;
    if (left > 0 && !report.offline) throw new Error(`${left} events still waiting`);
  })());
});

// Without Background Sync, process on start-up: queued events go out whenever the worker runs.
if (!("sync" in self.registration)) {
  state.get().then((session) => session && startFor(session)).catch(() => {});
}
