// The demo PWA: log in, save weights (offline too), watch the outbox deliver them exactly once.
import init, { Outbox } from "/pkg/progress_outbox.js";

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
// ?fast=1 shortens every interval so a visitor (or a test) sees retries in seconds, not minutes.
const fast = params.has("fast");
const USER_KEY = "progress-demo.user"; // the user id only: tokens never touch storage

const config = {
  endpoint: "/api/v1/progress",
  token: (userId, hint) => tokens.get(userId, hint && hint.refresh),
  log: params.get("log") || "info",
  ...(fast ? { processingIntervalMs: 300, backoffMs: [300, 600, 1000, 2000, 3000], requestTimeoutMs: 4000, staleAfterMs: 5000 } : {}),
  ...(params.has("staleMs") ? { staleAfterMs: Number(params.get("staleMs")) } : {}),
  ...(params.has("db") ? { dbName: params.get("db") } : {}),
  onVersionChange: () => showBanner("A newer version of this app was opened in another tab and upgraded the database. Reload this page to continue."),
};
const SYNC_TAG = "progress-outbox";

/** Demo login: the dev API hands out short-lived signed tokens. */
const tokens = {
  cache: new Map(), // userId -> { token, exp }
  async get(userId, refresh) {
    const hit = this.cache.get(userId);
    if (hit && !refresh && hit.exp - Date.now() > 30_000) return hit.token;
    const res = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId }) });
    if (!res.ok) throw new Error(`login failed: HTTP ${res.status}`);
    const { token, expiresInMs } = await res.json();
    this.cache.set(userId, { token, exp: Date.now() + expiresInMs });
    return token;
  },
  /** Hands the service worker a token (by message: tokens never go to storage). */
  async share(userId, refresh) {
    await this.get(userId, refresh);
    const { token, exp } = this.cache.get(userId);
    postToServiceWorker({ type: "token", userId, token, exp });
  },
  forget(userId) { this.cache.delete(userId); },
};

let outbox;
let lastStats = null;

function fmtTime(ms) {
  if (ms == null) return "never";
  const d = new Date(ms);
  const ago = Math.round((Date.now() - ms) / 1000);
  const rel = ago < 0 ? `in ${-ago}s` : ago < 90 ? `${ago}s ago` : ago < 5400 ? `${Math.round(ago / 60)} min ago` : d.toLocaleDateString();
  return `${d.toLocaleTimeString()} (${rel})`;
}

const kgText = (kg) => String(Number(kg.toFixed(2)));

function showBanner(text) {
  const b = $("#banner");
  b.textContent = text;
  b.hidden = !text;
}

function handle(err) {
  if (err && err.code === "VERSION_CHANGED") showBanner("A newer version of this app was opened in another tab. Reload this page to continue.");
  console.error(err);
}

// ---------- session ----------
function renderSession() {
  const user = outbox.currentUser;
  $("#who").textContent = user ? `logged in as ${user}` : "not logged in";
  $("#user").hidden = !!user;
  $("#login-btn").hidden = !!user;
  $("#logout-btn").hidden = !user;
  $("#save").disabled = !user;
}

function login(userId) {
  try {
    outbox.start(userId); // returns at once; uploads begin in the background
  } catch (e) {
    $("#form-error").textContent = e.message;
    return;
  }
  localStorage.setItem(USER_KEY, userId);
  tellServiceWorker();
  renderSession();
  refreshAll();
}

/** The service worker uploads when no tab does: it needs the user and a token (in memory). */
function tellServiceWorker() {
  const userId = outbox.currentUser;
  if (!userId) return;
  postToServiceWorker({ type: "user", userId, fast });
  tokens.share(userId).catch(() => {});
}

async function registerBackgroundSync() {
  try {
    const reg = await navigator.serviceWorker.ready;
    if (reg.sync) await reg.sync.register(SYNC_TAG);
  } catch {
    // no Background Sync here: the worker processes on its start-up instead
  }
}

function logout() {
  const user = outbox.currentUser;
  outbox.stop();
  if (user) tokens.forget(user);
  localStorage.removeItem(USER_KEY);
  postToServiceWorker({ type: "logout" });
  renderSession();
  renderRole();
  renderStats(null);
  $("#entries").replaceChildren();
  $("#failed").replaceChildren(li("none", "muted"));
  $("#chart").replaceChildren();
}

// ---------- rendering ----------
function li(text, cls) {
  const el = document.createElement("li");
  el.textContent = text;
  if (cls) el.className = cls;
  return el;
}

function renderRole() {
  const el = $("#role");
  const user = outbox.currentUser;
  el.hidden = !user;
  el.textContent = outbox.isLeader ? "this tab uploads" : "another tab or the service worker uploads";
  el.classList.toggle("off", false);
}

function renderStats(s) {
  lastStats = s;
  renderRole();
  for (const el of document.querySelectorAll("#dashboard .n")) {
    const v = s ? s[el.dataset.k] : null;
    el.textContent = v == null ? "–" : el.dataset.k === "syncLatencyMs" ? `${v} ms` : String(v);
  }
  $("#last-sync").textContent = s ? fmtTime(s.lastSyncAt) : "never";
  $("#oldest").textContent = s && s.oldestPendingAt ? fmtTime(s.oldestPendingAt) : "–";
  $("#last-error").textContent = s && s.lastError ? `${s.lastError} · ${fmtTime(s.lastErrorAt)}` : "none";
}

function badgeFor(entry, event) {
  if (entry.backendId) return ["synced", `synced · ${entry.backendId}`];
  if (!event) return ["pending", "pending"];
  if (event.status === "failed") return event.gaveUp ? ["gaveup", "gave up"] : ["failed", `retry ${fmtTime(event.nextAttemptAt).split(" (")[1]?.replace(")", "") || "soon"}`];
  return [event.status, event.status === "processing" ? `uploading (attempt ${event.attemptCount})` : "pending"];
}

function renderChart(entries) {
  const points = entries.slice(0, 60).reverse(); // oldest first, newest right
  const box = $("#chart");
  if (points.length < 2) {
    box.replaceChildren();
    return;
  }
  const W = Math.max(200, box.clientWidth || 600), H = 140, P = 24;
  const xs = points.map((e) => e.date), ys = points.map((e) => e.quantity);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys) - 0.5, Math.max(...ys) + 0.5];
  const sx = (x) => P + ((x - x0) / Math.max(1, x1 - x0)) * (W - 2 * P);
  const sy = (y) => H - P + -((y - y0) / Math.max(0.1, y1 - y0)) * (H - 2 * P);
  const path = points.map((e, i) => `${i ? "L" : "M"}${sx(e.date).toFixed(1)},${sy(e.quantity).toFixed(1)}`).join(" ");
  const dots = points.map((e) => `<circle cx="${sx(e.date).toFixed(1)}" cy="${sy(e.quantity).toFixed(1)}" r="3" fill="${e.backendId ? "#0d9488" : "#fff"}" stroke="#0d9488" stroke-width="1.5"><title>${e.quantity} kg · ${new Date(e.date).toLocaleString()}${e.backendId ? "" : " (not synced yet)"}</title></circle>`).join("");
  box.innerHTML = `<svg viewBox="0 0 ${W} ${H}" aria-hidden="true">
    <text x="4" y="14" font-size="11" fill="#6b7785">${y1.toFixed(1)} kg</text>
    <text x="4" y="${H - 6}" font-size="11" fill="#6b7785">${y0.toFixed(1)} kg</text>
    <path d="${path}" fill="none" stroke="#0d9488" stroke-width="2" vector-effect="non-scaling-stroke"/>${dots}</svg>`;
}

async function renderLists() {
  const user = outbox.currentUser;
  if (!user) return;
  const [entries, events, failed] = await Promise.all([outbox.entries(), outbox.events({ limit: 2000 }), outbox.events({ status: "failed" })]);
  if (outbox.currentUser !== user) return;
  const byEntity = new Map();
  for (const ev of events) if (!byEntity.has(ev.entityId)) byEntity.set(ev.entityId, ev); // newest event per entry
  $("#entry-count").textContent = `(${entries.length})`;
  $("#entries").replaceChildren(...entries.slice(0, 200).map((e) => {
    const row = document.createElement("li");
    row.dataset.entryId = e.id;
    const [cls, text] = badgeFor(e, byEntity.get(e.id));
    row.innerHTML = `<span class="kg"></span><span class="when"></span><span class="badge ${cls}"></span>`;
    row.querySelector(".kg").textContent = `${kgText(e.quantity)} kg`;
    row.querySelector(".when").textContent = new Date(e.date).toLocaleString();
    row.querySelector(".badge").textContent = text;
    const ev = byEntity.get(e.id);
    if (ev && ev.errorMessage && !e.backendId) row.title = ev.errorMessage;
    return row;
  }));
  renderChart(entries);
  $("#failed").replaceChildren(...(failed.length ? failed.map(renderFailed) : [li("none", "muted")]));
}

function renderFailed(ev) {
  const row = document.createElement("li");
  row.dataset.eventId = ev.id;
  row.innerHTML = `<div class="head"><span class="badge"></span><strong class="what"></strong><button type="button" class="secondary">Retry</button></div><div class="why"></div><div class="small muted meta"></div>`;
  row.querySelector(".badge").className = `badge ${ev.gaveUp ? "gaveup" : "failed"}`;
  row.querySelector(".badge").textContent = ev.gaveUp ? "gave up" : "will retry";
  row.querySelector(".what").textContent = `${kgText(ev.metadata.quantity)} kg · ${new Date(ev.metadata.date).toLocaleDateString()}`;
  row.querySelector(".why").textContent = explain(ev);
  row.querySelector(".meta").textContent = `attempt ${ev.attemptCount} of ${ev.maxAttempts}${ev.nextAttemptAt ? ` · next attempt ${fmtTime(ev.nextAttemptAt)}` : ""} · event ${ev.id.slice(0, 8)}`;
  row.querySelector("button").addEventListener("click", async (e) => {
    e.target.disabled = true;
    try {
      await outbox.resetForRetry([ev.id]);
    } catch (err) {
      handle(err);
    }
    refreshAll();
  });
  return row;
}

/** A person-readable reason for a failure, from the library's errorMessage. */
function explain(ev) {
  const m = ev.errorMessage || "";
  const status = /^HTTP (\d{3})/.exec(m);
  if (status) {
    const code = Number(status[1]);
    if (code === 401) return `The server did not accept the login token (even after refreshing it). ${m}`;
    if (code === 429) return `The server asked us to slow down; the outbox waits as long as it says. ${m}`;
    if (code >= 500) return `The server had a problem; the outbox retries with backoff. ${m}`;
    if (code >= 400) return `Refused by the server, which will keep refusing it: fix the cause, then Retry. ${m.replace(/ \(the server refused.*\)$/, "")}`;
  }
  if (m.startsWith("network error")) return `The server could not be reached; retried automatically. ${m}`;
  if (m.startsWith("no response")) return `The server did not answer in time; retried automatically. ${m}`;
  if (m.startsWith("token")) return `Could not get a login token; retried automatically. ${m}`;
  return m;
}

let listTimer = 0;
function refreshAll() {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => renderLists().catch(handle), 60);
}

// ---------- faults (developer panel) ----------
async function loadFaults() {
  try {
    const f = await (await fetch("/api/v1/faults")).json();
    $("#fault-mode").value = f.mode;
    $("#fault-rate").value = f.failureRate;
    $("#fault-delay").value = f.delayMs;
    $("#fault-status").value = f.status;
    $("#fault-retry").value = f.retryAfter;
    $("#fault-state").textContent = `server mode: ${f.mode}`;
  } catch {
    $("#fault-state").textContent = "dev API unreachable";
  }
}

async function applyFaults(e) {
  e.preventDefault();
  const body = {
    mode: $("#fault-mode").value,
    failureRate: Number($("#fault-rate").value),
    delayMs: Number($("#fault-delay").value),
    status: Number($("#fault-status").value),
    retryAfter: Number($("#fault-retry").value),
  };
  try {
    const res = await fetch("/api/v1/faults", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const f = await res.json();
    $("#fault-state").textContent = res.ok ? `server mode: ${f.mode}` : `refused: ${f.error}`;
  } catch {
    $("#fault-state").textContent = "dev API unreachable";
  }
}

async function countServer() {
  try {
    const rows = await (await fetch("/api/v1/progress?all=1")).json();
    $("#server-count").textContent = String(rows.length);
    const f = await (await fetch("/api/v1/faults")).json();
    $("#fault-state").textContent = `server mode: ${f.mode}`;
  } catch {
    $("#server-count").textContent = "?";
    $("#fault-state").textContent = "dev API unreachable";
  }
}

// ---------- service worker ----------
function postToServiceWorker(msg) {
  if ("serviceWorker" in navigator && navigator.serviceWorker.controller) navigator.serviceWorker.controller.postMessage(msg);
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", (e) => {
    const msg = e.data || {};
    // The worker needs a token (it keeps them in memory only, and lost them when it was stopped).
    if (msg.type === "need-token" && msg.userId === outbox.currentUser) tokens.share(msg.userId, msg.refresh).catch(() => {});
  });
  navigator.serviceWorker.addEventListener("controllerchange", tellServiceWorker);
  try {
    await navigator.serviceWorker.register("/sw.js", { type: "module", scope: "/" });
  } catch (e) {
    console.warn("service worker not registered:", e);
  }
}

// ---------- wiring ----------
async function main() {
  await init();
  try {
    outbox = await Outbox.open(config);
  } catch (e) {
    showBanner(`The outbox could not open: ${e.message}`);
    throw e;
  }
  window.demo = { outbox, tokens }; // handy in the console (and for the end-to-end tests)

  outbox.subscribe((s) => {
    renderStats(s);
    refreshAll();
    countServer();
  });

  $("#login").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#user").value.trim();
    if (!id) {
      $("#form-error").textContent = "Enter a user id to log in.";
      return;
    }
    $("#form-error").textContent = "";
    login(id);
  });
  $("#logout-btn").addEventListener("click", logout);

  $("#weight-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#form-error").textContent = "";
    $("#form-ok").textContent = "";
    const raw = $("#kg").value.trim().replace(",", ".");
    // Hand the library what the user typed: it is the one that validates (and explains).
    const kg = raw === "" ? undefined : /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw) ? Number(raw) : raw;
    const dateValue = $("#date").value;
    const options = dateValue ? { date: new Date(dateValue) } : {};
    try {
      const entry = await outbox.saveWeight(kg, options);
      if (!navigator.onLine) registerBackgroundSync(); // the worker finishes the job when the network returns
      $("#kg").value = "";
      $("#form-ok").textContent = `Saved ${entry.quantity} kg.`;
      refreshAll();
    } catch (err) {
      // Validation errors are the library's words, shown where the user typed.
      $("#form-error").textContent = err.message;
      if (!(err instanceof TypeError || err instanceof RangeError)) handle(err);
    }
  });

  $("#process-now").addEventListener("click", async () => {
    try {
      const r = await outbox.processNow();
      $("#pass").textContent = r.offline ? "offline: nothing sent" : `claimed ${r.claimed}, completed ${r.completed}, retrying ${r.retrying}, gave up ${r.gaveUp}`;
    } catch (err) {
      handle(err);
    }
    refreshAll();
  });

  $("#faults").addEventListener("submit", applyFaults);

  const net = () => {
    $("#network").textContent = navigator.onLine ? "online" : "offline";
    $("#network").classList.toggle("off", !navigator.onLine);
  };
  addEventListener("online", net);
  addEventListener("offline", net);
  net();

  const saved = localStorage.getItem(USER_KEY);
  if (saved) login(saved);
  renderSession();
  loadFaults();
  countServer();
  setInterval(countServer, 2000);
  setInterval(() => lastStats && renderStats(lastStats), 5000); // keep "x s ago" fresh
  registerServiceWorker();
  // Leaving with work queued: let the service worker finish it (Background Sync).
  addEventListener("pagehide", () => {
    if (lastStats && lastStats.pending + lastStats.retrying > 0) registerBackgroundSync();
  });
  setInterval(renderRole, 1000);
  document.body.dataset.ready = "1";
}

main().catch(handle);
