// The demo PWA: log in, save any of six metrics (offline too), edit and delete entries, and watch
// the outbox deliver every change exactly once, in order.
//
// URL switches: ?fast=1 shortens every interval (retries in seconds, not minutes); ?batch=1 uploads
// through batchEndpoint; ?log=debug|info|warn|off; ?db=<name>; ?staleMs=, ?stalledMs=, ?failingAfter=
// set staleAfterMs, stalledAfterMs and failingAfter.
import init, { Outbox } from "/pkg/index.js";
import { BATCH_ENDPOINT, outboxSettings } from "/settings.js";

const $ = (sel, root = document) => root.querySelector(sel);
const params = new URLSearchParams(location.search);
const fast = params.has("fast");
const batch = params.get("batch") === "1";
const USER_KEY = "progress-demo.user"; // the user id only: tokens never touch storage
const SYNC_TAG = "progress-outbox";
const number = (name) => (params.has(name) ? { [name]: Number(params.get(name)) } : {});

const db = params.get("db") || null;
const config = {
  ...outboxSettings({ fast, batch, db }), // the service worker opens its outbox with the same
  // The outbox asks for the token of the user whose events it uploads (that may be another user
  // than the one logged in here, e.g. events saved before a switch of user): use the argument.
  token: (userId, hint) => tokens.get(userId, hint && hint.refresh),
  log: params.get("log") || "info",
  ...(params.has("staleMs") ? { staleAfterMs: Number(params.get("staleMs")) } : {}),
  ...(params.has("stalledMs") ? { stalledAfterMs: Number(params.get("stalledMs")) } : {}),
  ...number("failingAfter"),
  onVersionChange: () => showBanner("A newer version of this app was opened in another tab and upgraded the database. Reload this page to continue."),
};

/** The library's metric table (CONTRACT §1), for labels and hints; the library does the validating. */
const METRICS = {
  weight: { label: "Weight", unit: "kg", shown: "kg", rule: "a finite number more than 0 and at most 635 kg", example: "72.5", integer: false },
  bodyFat: { label: "Body fat", unit: "%", shown: "%", rule: "a finite number from 1 to 75 %", example: "18.5", integer: false },
  height: { label: "Height", unit: "cm", shown: "cm", rule: "a finite number from 30 to 300 cm", example: "178", integer: false },
  steps: { label: "Steps", unit: "count", shown: "steps", rule: "an integer from 0 to 200000 (count)", example: "8042", integer: true },
  heartRate: { label: "Heart rate", unit: "bpm", shown: "bpm", rule: "an integer from 20 to 300 bpm", example: "62", integer: true },
  mood: { label: "Mood", unit: "score", shown: "/ 10", rule: "an integer from 1 to 10 (score)", example: "7", integer: true },
};

/** Demo login: the dev API hands out short-lived signed tokens, one per user. */
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
let editing = null; // the id of the entry whose row is in edit mode

// ---------- formatting ----------
function ago(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return `in ${-s}s`;
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function fmtTime(ms) {
  if (ms == null) return "never";
  return `${new Date(ms).toLocaleTimeString()} (${ago(ms)})`;
}

function fmtBytes(n) {
  if (n == null) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

const numText = (q) => String(Number(Number(q).toFixed(2)));
const metricOf = (type) => METRICS[type] || { label: type, unit: "", shown: "", rule: "", example: "" };
const qtyText = (type, q) => `${numText(q)} ${metricOf(type).shown}`.trim();
const shortDate = (ms) => new Date(ms).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** A datetime-local input value for a time (local time, minutes). */
function localInput(ms) {
  const d = new Date(ms);
  return new Date(ms - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/** What the user typed, handed to the library as is when it is not a number: the library explains.
 *  One comma is a decimal comma ("72,5"), except in a number written in groups of three digits
 *  ("10,000", "10.000", "10 000"): those are whole numbers for a metric that counts (steps), and
 *  ambiguous for the others (refused as typed, never read as 10). */
function parseQuantity(text, metric) {
  const typed = text.trim();
  if (typed === "") return undefined;
  // Groups of three: whole numbers for a metric that counts ("10.000" too: a count has no
  // decimals); for the others a "." is a decimal point ("72.125") and any other separator ambiguous.
  const integer = metricOf(metric).integer;
  if ((integer ? /^\+?\d{1,3}([,.\u00a0\u202f ']\d{3})+$/ : /^\+?\d{1,3}([,\u00a0\u202f ']\d{3})+$/).test(typed)) {
    return integer ? Number(typed.replace(/\D/g, "")) : typed;
  }
  const raw = typed.replace(",", ".");
  return /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw) ? Number(raw) : typed;
}

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

/** Bumped at every login and logout: a call's message is shown only in the session that made it. */
let session = 0;

/** `fromOtherTab`: another tab of the app logged in (the stored user changed): follow it. */
function login(userId, fromOtherTab = false) {
  try {
    outbox.start(userId); // returns at once; uploads begin in the background
  } catch (e) {
    $("#form-error").textContent = e.message;
    return;
  }
  session++;
  // The tab where the user logged in tells the service worker (with its own settings); the tabs
  // that follow it do not, or the worker would take the settings of whichever followed last.
  if (!fromOtherTab) {
    localStorage.setItem(USER_KEY, userId);
    loginRecord.write(userId);
    tellServiceWorker();
  }
  renderSession();
  refreshStats();
  refreshAll();
}

/** The service worker uploads when no tab does: it needs the user and a token (in memory). */
function tellServiceWorker() {
  const userId = outbox.currentUser;
  if (!userId) return;
  postToServiceWorker({ type: "user", userId, fast, batch, db });
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

/** `fromOtherTab`: another tab of the app logged out (the stored user is gone): follow it. */
function logout(fromOtherTab = false) {
  const user = outbox.currentUser;
  outbox.stop();
  session++;
  if (user) tokens.forget(user);
  if (!fromOtherTab) {
    localStorage.removeItem(USER_KEY);
    loginRecord.write(null);
    postToServiceWorker({ type: "logout" });
  }
  editing = null;
  renderSession();
  renderRole();
  renderStats(null);
  for (const id of ["#form-ok", "#form-error", "#pass"]) $(id).textContent = "";
  rowCache.clear();
  $("#entries").replaceChildren();
  $("#entry-count").textContent = "";
  $("#failed").replaceChildren(li("none", "muted"));
  $("#charts").replaceChildren();
}

// ---------- rendering: stats, health ----------
function li(text, cls) {
  const el = document.createElement("li");
  el.textContent = text;
  if (cls) el.className = cls;
  return el;
}

function renderRole() {
  const el = $("#role");
  el.hidden = !outbox.currentUser;
  el.textContent = outbox.isLeader ? "this tab uploads" : "another tab or the service worker uploads";
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** stats().health in words: what it means and what to do (CONTRACT §1, issue 13). */
const HEALTH = {
  ok: {
    title: "Syncing normally",
    why: (s) => {
      const waiting = s.pending + s.processing + s.retrying;
      return waiting ? `${plural(waiting, "change")} on the way to the server.` : "Everything saved on this device has reached the server.";
    },
    todo: () => "Nothing to do.",
  },
  offline: {
    title: "Offline",
    why: (s) => `This device reports no network, so nothing is uploaded. Saving, editing and deleting still work: ${s.pending + s.retrying ? plural(s.pending + s.retrying, "change") + " wait" : "changes wait"} safely on this device.`,
    todo: () => "Nothing to do: uploads resume by themselves when the network returns (after this tab is closed too, while the browser keeps the service worker running with a login token; otherwise when the app is next opened).",
  },
  failing: {
    title: "Uploads are failing",
    why: (s) => [
      s.gaveUp ? `${plural(s.gaveUp, "change")} gave up (refused by the server, or out of attempts).` : "",
      s.failedInARow ? `The last ${s.failedInARow === 1 ? "answer" : `${s.failedInARow} answers`} from the server ${s.failedInARow === 1 ? "was an error" : "were all errors"}.` : "",
    ].filter(Boolean).join(" "),
    todo: (s) => s.gaveUp
      ? "Open Failed events below: fix the cause (the server, or the data), then press Retry. Nothing is lost meanwhile."
      : "The outbox keeps retrying with backoff. If the server stays broken, fix it (see the Developer panel); nothing is lost meanwhile.",
  },
  stalled: {
    title: "Sync is stalled",
    why: (s) => `Online, yet the oldest waiting change was saved ${s.oldestPendingAt ? ago(s.oldestPendingAt) : "long ago"} and has not reached the server: the server may be unreachable or very slow, or the tab that uploads is stuck.`,
    todo: () => "Press Sync now. If it stays stalled, check the server (Developer panel) and reload other tabs of this app. Your changes keep waiting safely on this device.",
  },
};

function renderHealth(s) {
  const box = $("#health");
  if (!s) {
    box.hidden = true;
    delete box.dataset.health;
    return;
  }
  const h = HEALTH[s.health] || { title: s.health, why: () => "", todo: () => "" };
  box.hidden = false;
  box.dataset.health = s.health;
  $(".state", box).textContent = h.title;
  $(".why", box).textContent = h.why(s);
  $(".todo", box).textContent = h.todo(s);
}

function renderStats(s) {
  lastStats = s;
  renderRole();
  renderHealth(s);
  for (const el of document.querySelectorAll("#dashboard .n")) {
    const v = s ? s[el.dataset.k] : null;
    el.textContent = v == null ? "–" : el.dataset.k === "syncLatencyMs" ? `${v} ms` : String(v);
  }
  $("#last-sync").textContent = s ? fmtTime(s.lastSyncAt) : "never";
  $("#oldest").textContent = s && s.oldestPendingAt ? fmtTime(s.oldestPendingAt) : "–";
  $("#last-error").textContent = s && s.lastError ? `${s.lastError} · ${fmtTime(s.lastErrorAt)}` : "none";
  const persisted = $("#persisted");
  persisted.dataset.persisted = s ? String(s.persisted) : "";
  persisted.textContent = !s ? "–"
    : s.persisted === true ? "persistent: the browser will not evict it under storage pressure"
    : s.persisted === false ? "best-effort: the browser may evict it under storage pressure (persistence not granted)"
    : "unknown (navigator.storage is not available here)";
  const st = $("#storage");
  st.textContent = !s ? "–" : s.storage ? `${fmtBytes(s.storage.usage)} used of ${fmtBytes(s.storage.quota)} available to this site` : "unknown (navigator.storage.estimate is not available here)";
}

async function refreshStats() {
  const user = outbox.currentUser;
  if (!user) return;
  try {
    const s = await outbox.stats();
    if (outbox.currentUser === user) renderStats(s); // not after a logout or a switch meanwhile
  } catch (e) {
    handle(e);
  }
}

// ---------- rendering: entries, badges, charts ----------
/** Events grouped by entry id, each entry's newest first (an entry's events are written create,
 *  then updates, then a delete: that order breaks ties within one millisecond). */
function eventsByEntity(events) {
  const map = new Map();
  for (const ev of events) {
    if (ev.quarantined || !ev.entityId) continue;
    if (!map.has(ev.entityId)) map.set(ev.entityId, []);
    map.get(ev.entityId).push(ev);
  }
  const rank = { create: 0, update: 1, delete: 2 };
  for (const list of map.values()) list.sort((a, b) => b.createdAt - a.createdAt || rank[b.operation] - rank[a.operation]);
  return map;
}

/**
 * The badge of an entry: its latest event's state. `evs` are the entry's events, newest first.
 * Returns [state, text, title]. States: pending, waiting, uploading, synced, retrying, gaveup, deleting.
 */
function badgeFor(entry, evs) {
  const latest = evs[0];
  const backendId = entry && entry.backendId;
  if (!latest) return backendId ? ["synced", `synced · ${backendId}`, "The server has it."] : ["pending", "pending", "Waiting to be uploaded."];
  const op = latest.operation;
  const opText = op === "create" ? "" : op === "update" ? " (edit)" : " (delete)";
  if (op === "delete" && latest.status !== "completed") {
    if (latest.status === "failed" && latest.gaveUp) return ["gaveup", "delete gave up", latest.errorMessage || "The delete gave up."];
    const extra = latest.status === "failed" ? " · retrying" : latest.status === "processing" ? " · uploading" : "";
    return ["deleting", `deleting${extra}`, "Deleted here; the delete is on its way to the server."];
  }
  switch (latest.status) {
    case "completed":
      return ["synced", `synced · ${backendId || "?"}`, `The server has it${op === "update" ? ", with the latest edit" : ""}.`];
    case "processing":
      return ["uploading", `uploading${opText}`, `In flight (request ${latest.requestCount ?? "?"}).`];
    case "pending": {
      // A later event of an entry waits until the earlier ones are done (and it has a backend id).
      const earlier = evs.slice(1).find((e) => e.status !== "completed");
      if (earlier && earlier.status === "failed" && earlier.gaveUp) return ["gaveup", `blocked${opText}`, `The earlier ${earlier.operation} of this entry gave up: retry it in Failed events below.`];
      if (earlier) return ["waiting", `waiting${opText}`, `Waits for the earlier ${earlier.operation} of this entry to reach the server.`];
      return ["pending", `pending${opText}`, "Waiting to be uploaded."];
    }
    case "failed":
      if (latest.gaveUp) return ["gaveup", `gave up${opText}`, latest.errorMessage || "Gave up."];
      return ["retrying", `retrying${opText} ${latest.nextAttemptAt > Date.now() + 500 ? ago(latest.nextAttemptAt) : "now"}`, latest.errorMessage || "Retrying."];
    default:
      return ["pending", latest.status, ""];
  }
}

function chartFor(type, points) {
  const m = metricOf(type);
  const fig = document.createElement("figure");
  fig.className = "chart";
  fig.dataset.metric = type;
  const unsynced = points.filter((e) => !e.backendId).length;
  const cap = document.createElement("figcaption");
  cap.innerHTML = `<strong></strong> <span class="muted"></span>`;
  cap.firstChild.textContent = m.label;
  cap.lastChild.textContent = `${m.unit} · ${points.length}${unsynced ? ` (${unsynced} unsynced)` : ""}`;
  cap.title = `${m.label} in ${m.unit}: ${plural(points.length, "entry", "entries")}${unsynced ? `, ${unsynced} not synced yet` : ""}`;
  fig.append(cap);
  const W = 300, H = 110, P = 16, L = 44;
  const xs = points.map((e) => e.date), ys = points.map((e) => e.quantity);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = Math.max((y1 - y0) * 0.1, m.integer ? 1 : 0.5);
  [y0, y1] = [y0 - pad, y1 + pad];
  const sx = (x) => (x1 === x0 ? (L + W - P) / 2 : L + ((x - x0) / (x1 - x0)) * (W - L - P));
  const sy = (y) => H - P - ((y - y0) / (y1 - y0)) * (H - 2 * P);
  const path = points.map((e, i) => `${i ? "L" : "M"}${sx(e.date).toFixed(1)},${sy(e.quantity).toFixed(1)}`).join(" ");
  const esc = (t) => t.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const dots = points.map((e) => `<circle class="dot ${e.backendId ? "synced" : "unsynced"}" cx="${sx(e.date).toFixed(1)}" cy="${sy(e.quantity).toFixed(1)}" r="3.2"><title>${esc(`${qtyText(type, e.quantity)} · ${new Date(e.date).toLocaleString()}${e.backendId ? "" : " (not synced yet)"}`)}</title></circle>`).join("");
  const label = (v) => esc(numText(m.integer ? Math.round(v) : v));
  fig.insertAdjacentHTML("beforeend", `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(m.label)} over time">
    <text x="2" y="${P + 4}" class="axis">${label(y1)}</text><text x="2" y="${H - P + 4}" class="axis">${label(y0)}</text>
    <line x1="${L - 4}" y1="${P}" x2="${L - 4}" y2="${H - P}" class="axis-line"/>
    ${points.length > 1 ? `<path d="${path}" class="line"/>` : ""}${dots}</svg>`);
  return fig;
}

function renderCharts(entries) {
  const byMetric = new Map();
  for (const e of entries) {
    if (!byMetric.has(e.type)) byMetric.set(e.type, []);
    byMetric.get(e.type).push(e);
  }
  const figs = Object.keys(METRICS).filter((t) => byMetric.has(t)).map((t) => chartFor(t, byMetric.get(t).slice(0, 60).reverse())); // oldest first
  $("#charts").replaceChildren(...(figs.length ? figs : [Object.assign(document.createElement("p"), { className: "muted small", textContent: "No measurements yet." })]));
}

function entryRow(e, evs) {
  const row = document.createElement("li");
  row.dataset.entryId = e.id;
  row.dataset.metric = e.type;
  const [state, text, title] = badgeFor(e, evs);
  row.innerHTML = `<span class="qty"></span><span class="metric-name muted small"></span><span class="when"></span><span class="badge"></span>
    <span class="actions"><button type="button" class="link edit">Edit</button><button type="button" class="link delete">Delete</button></span>`;
  $(".qty", row).textContent = qtyText(e.type, e.quantity);
  $(".metric-name", row).textContent = metricOf(e.type).label;
  $(".when", row).textContent = shortDate(e.date);
  $(".when", row).title = new Date(e.date).toLocaleString();
  const badge = $(".badge", row);
  badge.className = `badge ${state}`;
  badge.dataset.state = state;
  badge.textContent = text;
  badge.title = title;
  $(".edit", row).addEventListener("click", () => startEdit(row, e));
  $(".delete", row).addEventListener("click", () => deleteEntry(row, e));
  return row;
}

/** An entry deleted here whose delete has not reached the server yet (a tombstone). */
function deletedRow(entityId, evs) {
  const latest = evs[0];
  const md = latest.metadata || {};
  const row = document.createElement("li");
  row.className = "deleted";
  row.dataset.entryId = entityId;
  row.dataset.metric = md.type;
  const [state, text, title] = badgeFor(null, evs);
  row.innerHTML = `<span class="qty"></span><span class="metric-name muted small"></span><span class="when"></span><span class="badge"></span><span class="actions"></span>`;
  $(".qty", row).textContent = qtyText(md.type, md.quantity);
  $(".metric-name", row).textContent = metricOf(md.type).label;
  $(".when", row).textContent = md.date != null ? shortDate(md.date) : "";
  const badge = $(".badge", row);
  badge.className = `badge ${state}`;
  badge.dataset.state = state;
  badge.textContent = text;
  badge.title = title;
  return row;
}

function startEdit(row, e) {
  // One edit form at a time: another one open closes (its row is rebuilt at the next render).
  if (editing && editing !== e.id) rowCache.delete(editing);
  editing = e.id;
  rowCache.delete(e.id); // this row now holds the form: never reused as a plain row
  row.classList.add("editing");
  const m = metricOf(e.type);
  row.innerHTML = `<form class="edit-form" novalidate>
      <span class="metric-name muted small"></span>
      <input class="edit-quantity" aria-label="quantity" autocomplete="off"><span class="unit muted small"></span>
      <input class="edit-date" type="datetime-local" aria-label="date">
      <button type="submit" class="edit-save">Save</button><button type="button" class="secondary edit-cancel">Cancel</button>
    </form><p class="error row-error" role="alert"></p>`;
  $(".metric-name", row).textContent = m.label;
  $(".unit", row).textContent = m.shown;
  const q = $(".edit-quantity", row);
  q.value = numText(e.quantity);
  q.inputMode = m.integer ? "numeric" : "decimal";
  q.title = `${m.label}: ${m.rule}`;
  const d = $(".edit-date", row);
  const initialDate = localInput(e.date);
  d.value = initialDate;
  let submitting = false;
  $(".edit-cancel", row).addEventListener("click", () => {
    if (editing === e.id) editing = null;
    refreshAll(0);
  });
  $(".edit-form", row).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (submitting) return; // a double submit of this form would queue the same edit twice
    if (d.validity.badInput) {
      $(".row-error", row).textContent = "Complete the date and time (or put back the one shown).";
      return;
    }
    const changes = { quantity: parseQuantity(q.value, e.type) };
    // An untouched date stays exactly as stored (the input only shows minutes).
    if (d.value !== initialDate) changes.date = d.value ? new Date(d.value) : undefined;
    submitting = true;
    const mine = session;
    try {
      const updated = await outbox.update(e.id, changes);
      if (mine !== session) return; // the screen was cleared by a logout meanwhile
      if (editing === e.id) editing = null; // another entry's form may be open by now
      rowCache.delete(e.id);
      $("#form-ok").textContent = `Updated ${m.label.toLowerCase()}: ${numText(updated.quantity)} ${updated.unit}.`;
      refreshAll(0);
    } catch (err) {
      // The library's words, next to the value that caused them.
      $(".row-error", row).textContent = err.message;
      if (!(err instanceof TypeError || err instanceof RangeError)) handle(err);
    } finally {
      submitting = false;
    }
  });
  q.focus({ preventScroll: true });
  q.select();
}

async function deleteEntry(row, e) {
  for (const b of row.querySelectorAll("button")) b.disabled = true;
  const mine = session;
  try {
    await outbox.delete(e.id);
    if (mine !== session) return; // the screen was cleared by a logout meanwhile
    $("#form-ok").textContent = `Deleted ${metricOf(e.type).label.toLowerCase()}: ${numText(e.quantity)} ${e.unit}.`;
    if (!navigator.onLine) registerBackgroundSync();
  } catch (err) {
    if (mine !== session) return;
    $("#form-error").textContent = err.message;
    handle(err);
  }
  rowCache.delete(e.id); // its buttons were disabled for the call
  refreshAll(0);
}

/** Rows by key, with what they show: a render keeps a row whose content did not change, so a
 *  click, the keyboard focus, a date segment or an IME composition in it survive the upload
 *  results that re-render the list several times a second. */
const rowCache = new Map();

/** The cached row of `key` if it shows `sig`, else a new one from `build`. */
function keyedRow(key, sig, build) {
  const hit = rowCache.get(key);
  if (hit && hit.sig === sig) return hit.node;
  const node = build();
  rowCache.set(key, { sig, node });
  return node;
}

/** Makes `list` hold `nodes` in order: rows gone are removed, new ones inserted, and a kept row
 *  is moved only when the order changed (an edited date). */
function reconcile(list, nodes) {
  const keep = new Set(nodes);
  for (const child of [...list.children]) if (!keep.has(child)) child.remove();
  nodes.forEach((n, i) => {
    if (list.children[i] !== n) list.insertBefore(n, list.children[i] || null);
  });
}

/** What a row shows of its events (times as shown: a countdown changes the row). */
const eventsSig = (evs) => JSON.stringify(evs.map((ev) => [ev.id, ev.status, ev.operation, ev.gaveUp, ev.attemptCount, ev.requestCount, ev.errorMessage, ev.status === "failed" && ev.nextAttemptAt ? fmtTime(ev.nextAttemptAt) : 0]));

let renderSeq = 0;
async function renderLists() {
  const user = outbox.currentUser;
  if (!user) return;
  const seq = ++renderSeq;
  const [entries, events] = await Promise.all([outbox.entries(), outbox.events({ limit: 5000 })]);
  if (outbox.currentUser !== user || seq !== renderSeq) return; // a newer render is under way
  const byEntity = eventsByEntity(events);
  const filter = $("#entries-metric").value;
  const live = new Set(entries.map((e) => e.id));
  // Deleted here, delete not acknowledged yet: shown struck through until the server confirms.
  const tombstones = [...byEntity].filter(([id, evs]) => !live.has(id) && evs[0].operation === "delete" && evs[0].status !== "completed");
  const items = [
    ...entries.map((e) => ({ date: e.date, type: e.type, row: () => {
      if (e.id === editing) {
        const open = $(`#entries li.editing[data-entry-id="${CSS.escape(e.id)}"]`);
        if (open) return open; // keep what is being typed
      }
      const evs = byEntity.get(e.id) || [];
      return keyedRow(e.id, JSON.stringify([e, badgeFor(e, evs), eventsSig(evs)]), () => entryRow(e, evs));
    } })),
    ...tombstones.map(([id, evs]) => ({ date: evs[0].metadata?.date ?? 0, type: evs[0].metadata?.type, row: () => keyedRow(`deleted:${id}`, JSON.stringify([badgeFor(null, evs), eventsSig(evs)]), () => deletedRow(id, evs)) })),
  ].filter((x) => !filter || x.type === filter).sort((a, b) => b.date - a.date);
  if (editing && !live.has(editing)) editing = null; // deleted meanwhile (here or in another tab)
  $("#entry-count").textContent = `(${entries.length})`;
  const list = $("#entries");
  // Moving the row being edited takes its focus away: typing would go nowhere. Give it back.
  const typing = list.contains(document.activeElement) ? document.activeElement : null;
  const caret = typing && selectionOf(typing);
  const nodes = items.slice(0, 300).map((x) => x.row());
  reconcile(list, nodes);
  list.dataset.renders = String(Number(list.dataset.renders || 0) + 1); // observable by tests
  if (typing && typing.isConnected && document.activeElement !== typing) {
    typing.focus({ preventScroll: true });
    if (caret) typing.setSelectionRange(...caret);
  }
  renderCharts(entries);
  const failed = events.filter((ev) => ev.status === "failed");
  const failedNodes = failed.map((ev) => keyedRow(`failed:${ev.id}`, eventsSig([ev]) + ev.quarantined, () => renderFailed(ev)));
  // Rows no longer shown are forgotten (the filter, a delete, a user switch).
  const shown = new Set([...nodes, ...failedNodes]);
  for (const [key, { node }] of rowCache) if (!shown.has(node)) rowCache.delete(key);
  reconcile($("#failed"), failedNodes.length ? failedNodes : [li("none", "muted")]);
}

/** An input's selection, or null where it has none (a date input). */
function selectionOf(el) {
  try {
    return typeof el.selectionStart === "number" ? [el.selectionStart, el.selectionEnd, el.selectionDirection] : null;
  } catch {
    return null;
  }
}

function renderFailed(ev) {
  const row = document.createElement("li");
  row.dataset.eventId = ev.id;
  row.innerHTML = `<div class="head"><span class="badge"></span><strong class="what"></strong><button type="button" class="secondary">Retry</button></div><div class="why"></div><div class="small muted meta"></div>`;
  const badge = $(".badge", row);
  badge.className = `badge ${ev.gaveUp ? "gaveup" : "retrying"}`;
  badge.textContent = ev.quarantined ? "unreadable" : ev.gaveUp ? "gave up" : "will retry";
  if (ev.quarantined) {
    $(".what", row).textContent = `record ${String(ev.id).slice(0, 8)}`;
    $(".why", row).textContent = `${ev.errorMessage} It blocks nothing; a newer version of the app may read it again.`;
    $("button", row).remove();
    return row;
  }
  const md = ev.metadata || {};
  const op = ev.operation === "create" ? "" : ` · ${ev.operation}`;
  $(".what", row).textContent = `${metricOf(md.type).label}: ${numText(md.quantity)} ${md.unit || metricOf(md.type).unit}${op} · ${new Date(md.date).toLocaleDateString()}`;
  $(".why", row).textContent = explain(ev);
  $(".meta", row).textContent = `failed answers ${ev.attemptCount} of ${ev.maxAttempts} · requests sent ${ev.requestCount ?? "?"}${ev.nextAttemptAt ? ` · next attempt ${fmtTime(ev.nextAttemptAt)}` : ""} · event ${ev.id.slice(0, 8)}`;
  $("button", row).addEventListener("click", async (e) => {
    e.target.disabled = true;
    try {
      await outbox.resetForRetry([ev.id]);
    } catch (err) {
      handle(err);
    }
    rowCache.delete(`failed:${ev.id}`); // its button was disabled for the call
    refreshAll(0);
  });
  return row;
}

/** A person-readable reason for a failure, from the library's errorMessage. */
function explain(ev) {
  const m = ev.errorMessage || "";
  const status = /^(?:batch request: )?HTTP (\d{3})/.exec(m);
  if (status) {
    const code = Number(status[1]);
    const batchNote = m.startsWith("batch request") ? " (the whole batch request failed: nothing in it was stored)" : "";
    if (code === 401) return `The server did not accept the login token (even after refreshing it). ${m}`;
    if (code === 429) return `The server asked us to slow down; the outbox waits as long as it says. ${m}`;
    if (code === 413) return `The batch was too large for the server; the outbox sends smaller batches. ${m}`;
    if (code >= 500) return `The server had a problem${batchNote}; the outbox retries with backoff. ${m}`;
    if (code === 408 || code === 409 || code === 425) return `A temporary refusal; the outbox retries with backoff. ${m}`;
    if (code >= 400) return `Refused by the server, which will keep refusing it: fix the cause, then Retry. ${m.replace(/ \(the server refused.*\)$/, "")}`;
    if (code >= 200 && code < 300) return `The server's answer could not be read as a result, so the outbox cannot know it was stored; it retries (the server replays by key). ${m}`;
  }
  if (m.includes("redirect")) return `The endpoint redirected the upload. Redirects are never followed (the health data could end up elsewhere), so the upload is not complete; retried with backoff under the same Idempotency-Key. ${m}`;
  if (m.startsWith("network error")) return `The server could not be reached; retried automatically, never given up. ${m}`;
  if (m.startsWith("no response")) return `The server did not answer in time; retried automatically, never given up. ${m}`;
  if (m.startsWith("token")) return `Could not get a login token; retried automatically. ${m}`;
  return m;
}

let listTimer = 0;
function refreshAll(delay = 60) {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => renderLists().catch(handle), delay);
}

// ---------- the form ----------
function renderMetricHint() {
  const m = metricOf($("#metric").value);
  $("#quantity-label").innerHTML = `${m.label} <span class="muted"></span>`;
  $("#quantity-label .muted").textContent = `(${m.unit})`;
  const q = $("#quantity");
  q.placeholder = m.example;
  q.inputMode = m.integer ? "numeric" : "decimal";
  $("#metric-rule").textContent = `${m.label} in ${m.unit}: ${m.rule}.`;
}

let saving = false;
async function saveFromForm(e) {
  e.preventDefault();
  if (saving) return; // a double click or a second Enter while this save is stored: saved once
  $("#form-error").textContent = "";
  $("#form-ok").textContent = "";
  const metric = $("#metric").value;
  // Hand the library what the user typed: it is the one that validates (and explains).
  const typed = $("#quantity").value;
  const quantity = parseQuantity(typed, metric);
  const dateInput = $("#date");
  // A half-filled date reads as "" (it would save as now): say so instead.
  if (dateInput.validity.badInput) {
    $("#form-error").textContent = "Complete the date and time, or clear it to save with the current time.";
    return;
  }
  const dateValue = dateInput.value;
  const options = dateValue ? { date: new Date(dateValue) } : {};
  saving = true;
  const mine = session;
  try {
    const entry = await outbox.save(metric, quantity, options);
    if (!navigator.onLine) registerBackgroundSync(); // the worker finishes the job when the network returns
    if (mine !== session) return; // logged out (or in as another user) meanwhile: not this screen's news
    // Emptied for the next value, unless the user already typed it while this one was stored.
    if ($("#quantity").value === typed) $("#quantity").value = "";
    $("#form-ok").textContent = `Saved ${metricOf(metric).label.toLowerCase()}: ${numText(entry.quantity)} ${entry.unit}.`;
    refreshAll(0);
  } catch (err) {
    // Validation errors are the library's words, shown where the user typed.
    if (mine === session) $("#form-error").textContent = err.message;
    if (!(err instanceof TypeError || err instanceof RangeError)) handle(err);
  } finally {
    saving = false;
  }
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
    $("#fault-redirect").value = String(f.redirectStatus);
    $("#fault-latency").value = f.latencyMs;
    $("#fault-replay").checked = f.replay !== false;
    showFaultState(f);
  } catch {
    $("#fault-state").textContent = "dev API unreachable";
  }
}

function showFaultState(f) {
  $("#fault-state").textContent = `server mode: ${f.mode}${f.replay === false ? " · replay off" : ""}${f.latencyMs ? ` · +${f.latencyMs} ms` : ""}`;
}

async function applyFaults(e) {
  e.preventDefault();
  const body = {
    mode: $("#fault-mode").value,
    failureRate: Number($("#fault-rate").value),
    delayMs: Number($("#fault-delay").value),
    status: Number($("#fault-status").value),
    retryAfter: Number($("#fault-retry").value),
    redirectStatus: Number($("#fault-redirect").value),
    latencyMs: Number($("#fault-latency").value),
    replay: $("#fault-replay").checked,
  };
  try {
    const res = await fetch("/api/v1/faults", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const f = await res.json();
    if (res.ok) showFaultState(f);
    else $("#fault-state").textContent = `refused: ${f.error}`;
  } catch {
    $("#fault-state").textContent = "dev API unreachable";
  }
}

async function countServer() {
  try {
    const [rows, f, elsewhere] = await Promise.all(["/api/v1/progress?all=1", "/api/v1/faults", "/api/v1/debug/elsewhere"].map(async (u) => (await fetch(u)).json()));
    $("#server-count").textContent = String(rows.length);
    $("#elsewhere-count").textContent = String(elsewhere.count);
    showFaultState(f);
  } catch {
    $("#server-count").textContent = "?";
    $("#elsewhere-count").textContent = "?";
    $("#fault-state").textContent = "dev API unreachable";
  }
}

// ---------- service worker ----------
/**
 * Who is logged in, kept durably: localStorage reaches the disk seconds after a change, so a
 * browser killed right after a login, logout or switch would open with the one before. The tab
 * where the user logs in or out writes `{ user }` (null: logged out) with strict durability.
 * `read()` resolves with that user, or undefined when there is no record (an older demo) or no
 * IndexedDB: then localStorage says.
 */
const loginRecord = {
  open() {
    return (this.db ??= new Promise((resolve, reject) => {
      const req = indexedDB.open("progress-demo-page", 1);
      req.onupgradeneeded = () => req.result.createObjectStore("kv");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    }));
  },
  async read() {
    try {
      const db = await this.open();
      return await new Promise((resolve) => {
        const req = db.transaction("kv").objectStore("kv").get("login");
        req.onsuccess = () => resolve(req.result ? req.result.user : undefined);
        req.onerror = () => resolve(undefined);
      });
    } catch {
      return undefined;
    }
  },
  async write(user) {
    try {
      const db = await this.open();
      await new Promise((resolve) => {
        const tx = db.transaction("kv", "readwrite", { durability: "strict" });
        tx.objectStore("kv").put({ user }, "login");
        tx.oncomplete = tx.onerror = tx.onabort = () => resolve();
      });
    } catch {
      // no IndexedDB: localStorage alone
    }
  },
};

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
  try {
    await init();
    outbox = await Outbox.open(config);
  } catch (e) {
    showBanner(`The outbox could not load or open: ${e.message}`);
    throw e;
  }
  window.demo = { outbox, tokens, METRICS, config, loginRecord }; // handy in the console (and for the end-to-end tests)

  outbox.subscribe((s) => {
    if (s.userId !== outbox.currentUser) return;
    renderStats(s);
    refreshAll();
  });

  for (const [name, m] of Object.entries(METRICS)) {
    $("#metric").append(new Option(`${m.label} (${m.unit})`, name));
    $("#entries-metric").append(new Option(m.label, name));
  }
  $("#metric").addEventListener("change", () => {
    renderMetricHint();
    $("#form-error").textContent = "";
  });
  renderMetricHint();
  $("#entries-metric").addEventListener("change", () => refreshAll(0));

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
  $("#logout-btn").addEventListener("click", () => logout());
  // Another tab of the app logged in or out (localStorage fires this in the other tabs only): one
  // session per browser, as a user expects of an app, not one per tab.
  let followed = false; // another tab's login or logout was followed before start-up decided
  addEventListener("storage", (e) => {
    if (e.key !== USER_KEY && e.key !== null) return; // null: the whole storage was cleared
    followed = true;
    const stored = localStorage.getItem(USER_KEY);
    const user = outbox.currentUser;
    if (stored === user) return;
    if (user) logout(true);
    if (stored) login(stored, true);
  });
  $("#entry-form").addEventListener("submit", saveFromForm);

  $("#process-now").addEventListener("click", async () => {
    const mine = session;
    try {
      const r = await outbox.processNow();
      if (mine !== session) return;
      $("#pass").textContent = r.offline ? "offline: nothing sent" : `${r.delegated ? "by the uploading context: " : ""}claimed ${r.claimed}, completed ${r.completed}, retrying ${r.retrying}, gave up ${r.gaveUp}, requests ${r.requests ?? "?"}`;
    } catch (err) {
      handle(err);
    }
    refreshAll(0);
  });

  $("#faults").addEventListener("submit", applyFaults);
  $("#upload-mode").textContent = batch ? `batches → ${BATCH_ENDPOINT}` : "one request per event";
  $("#upload-mode").classList.toggle("on", batch);
  $("#batch-toggle").checked = batch;
  $("#batch-toggle").addEventListener("change", (e) => {
    const p = new URLSearchParams(location.search);
    if (e.target.checked) p.set("batch", "1");
    else p.delete("batch");
    location.search = p.toString();
  });

  const net = () => {
    $("#network").textContent = navigator.onLine ? "online" : "offline";
    $("#network").classList.toggle("off", !navigator.onLine);
  };
  addEventListener("online", net);
  addEventListener("offline", net);
  net();

  // The durable record first (see loginRecord); localStorage when there is none. A login or
  // logout another tab made while it was read is newer: followed already, nothing to decide.
  const recorded = await loginRecord.read();
  if (!followed) {
    const saved = recorded === undefined ? localStorage.getItem(USER_KEY) : recorded;
    if (saved) login(saved);
    else {
      if (localStorage.getItem(USER_KEY)) localStorage.removeItem(USER_KEY);
      // Logged out: so is the service worker (a logout made in a page it did not control never
      // reached it).
      postToServiceWorker({ type: "logout" });
    }
  }
  renderSession();
  loadFaults();
  countServer();
  setInterval(countServer, 2000);
  // Keep "x s ago" and the retry countdowns fresh (a render keeps every row that did not change).
  setInterval(() => {
    if (lastStats) renderStats(lastStats);
    if (outbox.currentUser) refreshAll(0);
  }, 5000);
  registerServiceWorker();
  // Leaving with work queued: let the service worker finish it (Background Sync).
  addEventListener("pagehide", () => {
    if (lastStats && lastStats.pending + lastStats.retrying + lastStats.processing > 0) registerBackgroundSync();
  });
  setInterval(renderRole, 1000);
  document.body.dataset.ready = "1";
}

main().catch(handle);
