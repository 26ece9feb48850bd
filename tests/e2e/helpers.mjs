// Shared plumbing for the end-to-end tests: a dev API server in its own process (so it can be
// killed and restarted) and Debian's Chromium driven by playwright-core with a persistent profile
// (so the browser itself can be SIGKILLed and relaunched on the same IndexedDB).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const artifacts = join(root, "test-results");
mkdirSync(artifacts, { recursive: true });

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-features=Translate"];

export function tempDir(tag) {
  return mkdtempSync(join(tmpdir(), `outbox-e2e-${tag}-`));
}

/** Starts `node www/server.mjs` on a free port; resolves once it prints its URL. */
export async function startServer({ dataDir = tempDir("data"), port = 0, env = {} } = {}) {
  const proc = spawn(process.execPath, [join(root, "www", "server.mjs")], {
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const url = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev server did not start:\n${out}`)), 15000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /demo: (http:\/\/localhost:\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m[1]);
      }
    });
    proc.stderr.on("data", (d) => { out += d; });
    proc.on("exit", (code) => reject(new Error(`dev server exited (${code}):\n${out}`)));
  });
  const api = async (path, init) => {
    const res = await fetch(url + path, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    url, dataDir, proc,
    port: Number(new URL(url).port),
    api,
    faults: (f) => api("/api/v1/faults", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(f) }),
    records: async () => (await api("/api/v1/progress?all=1")).body,
    attempts: async () => (await api("/api/v1/debug/attempts")).body,
    /** Every /api/ request the server saw: [{method, path, key, keys, status, at}]. */
    requests: async () => (await api("/api/v1/debug/requests")).body,
    /** Records including deleted ones ({deleted: true}). */
    allRecords: async () => (await api("/api/v1/progress?all=1&deleted=1")).body,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGKILL");
      await exited;
    },
  };
}

/** Chromium with a persistent profile (IndexedDB, service worker, localStorage survive relaunches). */
export async function launch(profileDir, { viewport = { width: 1280, height: 900 } } = {}) {
  const context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport });
  return context;
}

/** SIGKILLs the browser process that uses `profileDir` (no clean shutdown: a crash). */
export function killBrowser(profileDir) {
  let killed = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmd;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (cmd.some((a) => a === `--user-data-dir=${profileDir}`) && !cmd.some((a) => a.startsWith("--type="))) {
      process.kill(Number(pid), "SIGKILL");
      killed++;
    }
  }
  if (!killed) throw new Error(`no browser process found for ${profileDir}`);
}

/** Opens the demo and waits until the app is wired up. */
export async function openDemo(context, url, query = "fast=1") {
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (e) => console.log("[page error]", e.message));
  await page.goto(`${url}/?${query}`);
  await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });
  return page;
}

export async function login(page, user) {
  await page.fill("#user", user);
  await page.click("#login-btn");
  await page.waitForSelector("#logout-btn:not([hidden])");
}

/**
 * Types a value into the demo's form, presses Save (metric: one of the six; default weight) and
 * waits until the save is over (stored, or refused): the next fill then never races it.
 */
export async function saveViaForm(page, value, metric = "weight") {
  if ((await page.inputValue("#metric")) !== metric) await page.selectOption("#metric", metric);
  await page.fill("#quantity", String(value));
  await page.click("#save"); // the submit handler empties both messages before it awaits the save
  await page.waitForFunction(() => document.querySelector("#form-ok").textContent || document.querySelector("#form-error").textContent, null, { timeout: 15000 });
}

/** The demo's entry row of `entryId` (a live entry, or a deleted one whose delete is under way). */
export function entryRow(page, entryId) {
  return page.locator(`#entries li[data-entry-id="${entryId}"]`);
}

/** The state of an entry's badge (pending, waiting, uploading, synced, retrying, gaveup, deleting), or null. */
export async function badgeState(page, entryId) {
  return (await badgeOf(page, entryId))?.state ?? null;
}

/** An entry's badge as { state, text, title, deleted (the row is a deleted entry) }, read in one go (the list re-renders often), or null. */
export function badgeOf(page, entryId) {
  return page.evaluate((id) => {
    const badge = document.querySelector(`#entries li[data-entry-id="${CSS.escape(id)}"] .badge`);
    return badge ? { state: badge.dataset.state, text: badge.textContent, title: badge.title, deleted: badge.closest("li").classList.contains("deleted") } : null;
  }, entryId);
}

/** Waits until an entry's badge is in `state` (or the row is gone, for state null); returns the badge text. */
export async function waitForBadge(page, entryId, state, options) {
  let last;
  try {
    return await waitFor(`entry ${entryId} badge ${state}`, async () => {
      last = await badgeOf(page, entryId);
      if ((last?.state ?? null) !== state) return null;
      return state === null ? "gone" : last.text;
    }, options);
  } catch (e) {
    e.message += ` (last seen: ${JSON.stringify(last)})`;
    throw e;
  }
}

/** The health banner: { health, text } (health null while hidden). */
export async function healthBanner(page) {
  return page.evaluate(() => {
    const el = document.querySelector("#health");
    return { health: el.hidden ? null : el.dataset.health || null, text: el.textContent.replace(/\s+/g, " ").trim() };
  });
}


export async function waitFor(what, check, { timeout = 20000, interval = 100 } = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Asserts every local entry is on the server exactly once (by localId). */
export function countByLocalId(records) {
  const counts = new Map();
  for (const r of records) counts.set(r.localId, (counts.get(r.localId) || 0) + 1);
  return counts;
}

export function cleanup(...dirs) {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** Runs `body({ server, profile, context })` against a fresh dev API and a fresh browser profile,
 *  and cleans both up whatever happens. */
export async function withDemo(tag, body, options = {}) {
  const server = await startServer();
  const profile = tempDir(tag);
  const context = await launch(profile, options);
  try {
    return await body({ server, profile, context });
  } finally {
    await context.close().catch(() => {});
    await server.stop();
    cleanup(profile, server.dataDir);
  }
}

/** Every /api/ request the dev API saw: [{method, path, key, keys, status, at}] (status null: no answer sent). */
export const requestLog = async (server) => (await server.api("/api/v1/debug/requests")).body;

/** A page of the dev server with the package loaded and an outbox open as `window.outbox`. */
export async function openOutbox(context, url, options) {
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (e) => console.log("[page error]", e.message));
  page.on("console", (m) => { if (m.type() === "warning") console.log("[console warning]", m.text()); });
  await page.goto(`${url}/manifest.webmanifest`);
  await page.evaluate(async (options) => {
    const { Outbox } = await import("/pkg/index.js");
    const token = async (userId) => {
      const res = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId }) });
      return (await res.json()).token;
    };
    window.outbox = await Outbox.open({ endpoint: "/api/v1/progress", token, log: "warn", ...options });
  }, options);
  return page;
}
