// End-to-end: many tabs, one uploader. Several tabs of the demo (one browser profile) against the
// dev API, with the leader tab crashed or frozen, a newer app version upgrading the database,
// and the service worker finishing the job after the last tab is gone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { countByLocalId, login, openDemo, requestLog, saveViaForm, waitFor, withDemo } from "./helpers.mjs";

const LOCK = (user) => `progress-outbox:progress-outbox:${user}`;

async function openTabs(context, url, n, user) {
  const first = await openDemo(context, url);
  await first.evaluate(() => navigator.serviceWorker.ready);
  await login(first, user);
  const tabs = [first];
  for (let i = 1; i < n; i++) {
    const p = await context.newPage();
    await p.goto(`${url}/?fast=1`);
    await p.waitForSelector("body[data-ready='1']");
    await waitFor("the tab to restore the session", () => p.evaluate(() => window.demo.outbox.currentUser));
    tabs.push(p);
  }
  return tabs;
}

/** The demo with its service worker active and controlling the page (reloaded once if need be). */
async function openControlledDemo(context, url, query) {
  const page = await openDemo(context, url, query);
  await page.evaluate(() => navigator.serviceWorker.ready);
  if (!(await page.evaluate(() => !!navigator.serviceWorker.controller))) {
    await page.reload();
    await page.waitForSelector("body[data-ready='1']");
  }
  return page;
}

const leaders = async (tabs) => {
  const flags = [];
  for (const t of tabs) flags.push(await t.evaluate(() => window.demo.outbox.isLeader).catch(() => false));
  return flags;
};

function saveMany(page, n, base) {
  return page.evaluate(async ([n, base]) => {
    for (let i = 0; i < n; i++) await window.demo.outbox.saveWeight(base + i / 10);
  }, [n, base]);
}

test("three tabs save 20 each: all 60 stored, every Idempotency-Key POSTed exactly once, one uploader", async () => withDemo("tabs-3", async ({ server, context }) => {
  const tabs = await openTabs(context, server.url, 3, "trio");
  await waitFor("an uploader", async () => (await tabs[0].evaluate((n) => navigator.locks.query().then((q) => q.held.some((l) => l.name === n)), LOCK("trio"))));
  await Promise.all(tabs.map((t, i) => saveMany(t, 20, 60 + i * 3)));
  await waitFor("60 records", async () => (await server.records()).length >= 60, { timeout: 30000 });
  await new Promise((r) => setTimeout(r, 800));
  const records = await server.records();
  assert.equal(records.length, 60);
  const local = await tabs[1].evaluate(() => window.demo.outbox.entries());
  assert.equal(local.length, 60);
  const counts = countByLocalId(records);
  for (const e of local) assert.equal(counts.get(e.id), 1, `entry ${e.id} stored ${counts.get(e.id) || 0} times`);
  const attempts = await server.attempts();
  assert.equal(Object.keys(attempts).length, 60);
  const dupes = Object.entries(attempts).filter(([, n]) => n !== 1);
  assert.deepEqual(dupes, [], "a key was POSTed more than once while the API was healthy");
  const flags = await leaders(tabs);
  assert.ok(flags.filter(Boolean).length <= 1, `more than one tab uploads: ${flags}`);
  const q = await tabs[0].evaluate((n) => navigator.locks.query().then((q) => ({ held: q.held.filter((l) => l.name === n).length, waiting: q.pending.filter((l) => l.name === n).length })), LOCK("trio"));
  assert.equal(q.held, 1, "one holder of the upload lock");
  assert.ok(q.waiting >= 2, `the others wait in the lock queue (${q.waiting})`);
}));

test("the uploading tab crashes mid-stream: a follower finishes, every entry stored exactly once", async () => withDemo("tabs-crash", async ({ server, context }) => {
  const tabs = await openTabs(context, server.url, 3, "crash");
  await server.faults({ mode: "slow", delayMs: 150 });
  await Promise.all(tabs.map((t, i) => saveMany(t, 20, 70 + i * 3)));
  await waitFor("uploads under way", async () => (await server.records()).length >= 6, { timeout: 20000 });
  const flags = await leaders(tabs);
  const leader = flags.indexOf(true);
  assert.ok(leader >= 0, `a tab uploads (${flags})`);
  const survivors = tabs.filter((_, i) => i !== leader);
  const before = (await server.records()).length;
  const cdp = await context.newCDPSession(tabs[leader]);
  const crashed = new Promise((r) => tabs[leader].once("crash", r));
  cdp.send("Page.crash").catch(() => {}); // the tab's renderer process dies (this never answers)
  await crashed;
  assert.ok(before < 60, "crashed mid-stream");
  await server.faults({ mode: "healthy" });
  await waitFor("60 records", async () => (await server.records()).length >= 60, { timeout: 45000 });
  await new Promise((r) => setTimeout(r, 800));
  const local = await survivors[0].evaluate(() => window.demo.outbox.entries());
  assert.equal(local.length, 60);
  const records = await server.records();
  const counts = countByLocalId(records);
  for (const e of local) assert.equal(counts.get(e.id), 1, `entry ${e.id} stored ${counts.get(e.id) || 0} times`);
  assert.equal(records.length, 60);
  const resent = Object.values(await server.attempts()).filter((n) => n > 1).length;
  console.log(`  stored before the crash: ${before}; keys resent after it (deduplicated by the server): ${resent}`);
}));

// Counts this page's IndexedDB transactions that have not finished yet (window.__openTx).
const COUNT_TRANSACTIONS = () => {
  window.__openTx = 0;
  const open = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (...args) {
    const tx = open.apply(this, args);
    window.__openTx++;
    let done = false;
    const end = () => { if (!done) { done = true; window.__openTx--; } };
    for (const e of ["complete", "abort", "error"]) tx.addEventListener(e, end);
    return tx;
  };
};

test("a hung uploading tab (holding the lock, running no code) does not hold the others up", async () => withDemo("tabs-hung", async ({ server, context }) => {
  // A tab that hangs in the middle of an IndexedDB transaction blocks every other context's
  // writes to those stores until it runs again (the browser cannot end the transaction for it);
  // saves elsewhere then reject after 10 s with TIMEOUT, nothing stored. That is the platform.
  // This test is about the upload lock, so the hang starts between transactions.
  await context.addInitScript(COUNT_TRANSACTIONS);
  const tabs = await openTabs(context, server.url, 2, "frost");
  // Visible pages take the upload over from a hidden page or the service worker.
  await waitFor("a tab to upload", async () => (await leaders(tabs)).some(Boolean));
  const flags = await leaders(tabs);
  const [leader, other] = flags[0] ? [tabs[0], tabs[1]] : [tabs[1], tabs[0]];
  // The uploading tab's main thread stops for 12 s: no timers, no heartbeat, lock still held
  // (what a frozen or stuck tab looks like to the others). Headless Chromium here cannot
  // freeze a page through the Page Lifecycle, so this is the closest real thing.
  const hung = leader.evaluate(async () => {
    while (window.__openTx > 0) await new Promise((r) => setTimeout(r, 0));
    const end = Date.now() + 12000; // from here on, in this one task: no transaction can start
    while (Date.now() < end) {}
  });
  hung.catch(() => {}); // if the test fails meanwhile, its own error is the one to report
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  await other.evaluate(() => window.demo.outbox.saveWeight(66.6));
  await waitFor("the record, uploaded by another context", async () => (await server.records()).length === 1, { timeout: 11000 });
  const took = Date.now() - started;
  console.log(`  uploaded ${took} ms after the save, while the old uploader was hung`);
  await hung;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await leader.evaluate(() => window.demo.outbox.isLeader), false, "the tab that hung does not upload alongside the new uploader");
  await leader.evaluate(() => window.demo.outbox.saveWeight(66.7));
  await waitFor("a second record", async () => (await server.records()).length === 2, { timeout: 10000 });
  assert.deepEqual(Object.values(await server.attempts()), [1, 1], "each key POSTed once");
}));

test("a newer app version upgrading the database: the old tab lets it through and asks for a reload", async () => withDemo("tabs-upgrade", async ({ server, context }) => {
  const [old, newer] = await openTabs(context, server.url, 2, "upgrader");
  await old.evaluate(() => window.demo.outbox.saveWeight(70));
  // The newer version opens the same database at a higher schema version than this library's.
  const current = await newer.evaluate(async () => (await indexedDB.databases()).find((d) => d.name === "progress-outbox").version);
  const version = await newer.evaluate((v) => new Promise((resolve, reject) => {
    const req = indexedDB.open("progress-outbox", v);
    req.onupgradeneeded = () => req.result.createObjectStore("addedByANewerVersion");
    req.onblocked = () => reject(new Error("blocked by the old tab"));
    req.onsuccess = () => { const v = req.result.version; req.result.close(); resolve(v); };
    req.onerror = () => reject(req.error);
  }), current + 1);
  assert.equal(version, current + 1, "the upgrade completed");
  await old.waitForSelector("#banner:not([hidden])");
  assert.match(await old.textContent("#banner"), /Reload this page/);
  const err = await old.evaluate(() => window.demo.outbox.saveWeight(71).then(() => null, (e) => e.code));
  assert.equal(err, "VERSION_CHANGED");
  // The upgrade kept the data: the library's stores are still there with the entry.
  const entries = await newer.evaluate(() => new Promise((resolve) => {
    const req = indexedDB.open("progress-outbox");
    req.onsuccess = () => { const r = req.result.transaction("entries").objectStore("entries").count(); r.onsuccess = () => { req.result.close(); resolve(r.result); }; };
  }));
  assert.equal(entries, 1);
}));

test("the service worker uploads once the last tab is gone, and on a Background Sync event", async () => withDemo("tabs-sw", async ({ server, context }) => {
  const page = await openControlledDemo(context, server.url);
  await login(page, "worker");
  // The service worker got the user and a token (by postMessage) and waits in the lock queue.
  await waitFor("the worker to queue for the upload lock", () => page.evaluate((n) => navigator.locks.query().then((q) => q.pending.some((l) => l.name === n)), LOCK("worker")));
  await server.faults({ mode: "offline" });
  await saveViaForm(page, 80.1);
  await saveViaForm(page, 80.2);
  await waitFor("failed attempts", () => page.evaluate(async () => (await window.demo.outbox.stats()).failed >= 1));
  // The last tab of the app goes away: only the service worker is left.
  await page.goto(`${server.url}/manifest.webmanifest`);
  await server.faults({ mode: "healthy" });
  await waitFor("2 records uploaded by the service worker", async () => (await server.records()).length === 2, { timeout: 20000 });

  // A Background Sync event (as Chrome fires when connectivity returns) runs processNow there.
  await page.goto(`${server.url}/?fast=1`);
  await page.waitForSelector("body[data-ready='1']");
  await server.faults({ mode: "offline" });
  await saveViaForm(page, 80.3);
  await waitFor("a failed attempt", () => page.evaluate(async () => (await window.demo.outbox.stats()).failed >= 1));
  await page.goto(`${server.url}/manifest.webmanifest`);
  await server.faults({ mode: "healthy" });
  const cdp = await context.newCDPSession(page);
  const regs = [];
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => regs.push(...e.registrations));
  await cdp.send("ServiceWorker.enable");
  await waitFor("the registration", () => regs.length > 0);
  await cdp.send("ServiceWorker.dispatchSyncEvent", { origin: server.url, registrationId: regs[0].registrationId, tag: "progress-outbox", lastChance: false });
  await waitFor("3 records", async () => (await server.records()).length === 3, { timeout: 10000 });
  const counts = countByLocalId(await server.records());
  assert.ok([...counts.values()].every((n) => n === 1), "each entry stored once");
}));

test("the service worker uploads the database the pages write (?db=) with the settings of the page that logged in last (?batch=1)", async () => withDemo("tabs-sw-settings", async ({ server, context }) => {
  const db = "demo-sw-settings";
  const page = await openControlledDemo(context, server.url, `fast=1&db=${db}`);
  await login(page, "sw-db");
  const lock = `progress-outbox:${db}:sw-db`; // the upload lock of that database and user
  const queued = () => page.evaluate((n) => navigator.locks.query().then((q) => q.pending.some((l) => l.name === n)), lock);
  await waitFor("the worker to queue for the upload lock of the page's database", queued);
  // The same user reopens the app with batches on: the worker follows the new settings.
  await page.goto(`${server.url}/?fast=1&batch=1&db=${db}`);
  await page.waitForSelector("body[data-ready='1']");
  await waitFor("the session restored", () => page.evaluate(() => window.demo.outbox.currentUser === "sw-db"));
  await waitFor("the worker to queue again", queued);
  await server.faults({ mode: "offline" });
  await saveViaForm(page, 81.5);
  await waitFor("a failed attempt", () => page.evaluate(async () => (await window.demo.outbox.stats()).failed >= 1));
  // The last tab goes away: what is left is the worker's to send.
  await page.goto(`${server.url}/manifest.webmanifest`);
  await server.api("/api/v1/debug/requests", { method: "DELETE" });
  await server.faults({ mode: "healthy" });
  await waitFor("the record uploaded by the service worker", async () => (await server.records()).length === 1, { timeout: 20000 });
  const sent = (await requestLog(server)).filter((r) => r.method === "POST" && r.path.startsWith("/api/v1/progress"));
  assert.ok(sent.length > 0 && sent.every((r) => r.path === "/api/v1/progress/batch"), `the worker used the batch endpoint: ${JSON.stringify(sent)}`);
}));

test("a login or logout in one tab is every tab's, and a call's message never shows after a logout", async () => withDemo("tabs-session", async ({ server, context }) => {
  const a = await openDemo(context, server.url);
  const b = await context.newPage();
  await b.goto(`${server.url}/?fast=1`);
  await b.waitForSelector("body[data-ready='1']");
  await login(a, "ann");
  await waitFor("tab b to follow the login", () => b.evaluate(() => window.demo.outbox.currentUser === "ann" && document.querySelector("#who").textContent === "logged in as ann"));
  await saveViaForm(b, 70.2);
  await waitFor("tab a to show the entry", async () => (await a.locator("#entries li").count()) === 1);
  // A switch of user in b: a follows (the other user's list, empty).
  await b.click("#logout-btn");
  await waitFor("tab a to follow the logout", () => a.evaluate(() => window.demo.outbox.currentUser === null && document.querySelector("#entries").children.length === 0 && document.querySelector("#logout-btn").hidden));
  await login(b, "bob");
  await waitFor("tab a to follow the new login", () => a.evaluate(() => window.demo.outbox.currentUser === "bob"));
  await waitFor("bob's list is empty in a", async () => (await a.locator("#entries li").count()) === 0);
  // Save, then log out before the save has been stored: its "Saved" never reaches the cleared
  // screen. The app's save call is watched, so the check comes right after the app's own handling.
  await a.fill("#quantity", "71.3");
  const after = await a.evaluate(async () => {
    const o = window.demo.outbox;
    const save = o.save;
    let done;
    o.save = (...args) => {
      const p = save.apply(o, args);
      done = p.then(() => "stored", (e) => `refused: ${e.message}`); // runs before the app's await resumes
      return p;
    };
    document.querySelector("#save").click(); // the handler calls save() before this returns
    document.querySelector("#logout-btn").click();
    const outcome = await done;
    await new Promise((r) => setTimeout(r, 0));
    delete o.save;
    return { outcome, ok: document.querySelector("#form-ok").textContent, error: document.querySelector("#form-error").textContent };
  });
  assert.deepEqual(after, { outcome: "stored", ok: "", error: "" }, "no message of the logged-out session");
  await waitFor("tab b to follow that logout too", () => b.evaluate(() => window.demo.outbox.currentUser === null));
}));
