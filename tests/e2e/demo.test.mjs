// End-to-end: the demo PWA in real Chromium against the dev API, with the API, the network and
// the browser itself failing. The claim under test: every measurement reaches the server exactly once,
// and every change (edit, delete) after it, in order; and the demo shows where each one stands
// (badges, health banner, failed panel) through the library's own API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { artifacts, badgeOf, cleanup, countByLocalId, entryRow, healthBanner, killBrowser, launch, login, openDemo, root, saveViaForm, startServer, tempDir, waitFor, waitForBadge, withDemo } from "./helpers.mjs";

const entriesOf = (page) => page.evaluate(() => window.demo.outbox.entries());
const statsOf = (page) => page.evaluate(() => window.demo.outbox.stats());
const eventsOf = (page, query = {}) => page.evaluate((q) => window.demo.outbox.events(q), query);

function assertExactlyOnce(records, entries) {
  const counts = countByLocalId(records);
  for (const e of entries) assert.equal(counts.get(e.id), 1, `entry ${e.id} (${e.quantity} kg) stored ${counts.get(e.id) || 0} times`);
  assert.equal(records.length, entries.length, "no extra records on the server");
}

test("(a) saved while the API is offline, page reloaded, API back: every entry stored exactly once", async () => withDemo("profile-a", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "alice");
  await server.faults({ mode: "offline" });
  for (const kg of [72.5, 72.3, 72.0, 71.8, 71.6]) {
    await saveViaForm(page, kg);
    await page.waitForSelector(`#entries li:has-text("${kg} kg")`);
  }
  await waitFor("failed upload attempts", async () => (await statsOf(page)).failed >= 1);
  assert.equal((await server.records()).length, 0);

  await page.reload();
  await page.waitForSelector("body[data-ready='1']");
  assert.equal((await entriesOf(page)).length, 5, "entries survive the reload");
  assert.match(await page.textContent("#who"), /alice/, "still logged in after reload");

  await server.faults({ mode: "healthy" });
  await waitFor("5 records on the server", async () => (await server.records()).length >= 5, { timeout: 30000 });
  await waitFor("all entries synced in the page", async () => (await entriesOf(page)).every((e) => e.backendId));
  const entries = await entriesOf(page);
  assertExactlyOnce(await server.records(), entries);
  await waitFor("every badge synced", async () => (await page.locator("#entries .badge.synced").count()) === 5);
  const s = await statsOf(page);
  assert.equal(s.completed, 5);
  assert.equal(s.pending + s.processing + s.failed, 0);
}));

test("(b) 20 saves on a slow API, browser SIGKILLed mid-upload, relaunched: every entry stored exactly once", async () => {
  const server = await startServer();
  const profile = tempDir("profile-b");
  let context = await launch(profile);
  try {
    // staleMs: a killed tab's in-flight events count as stale after 3 s (default: 5 min).
    const query = "fast=1&staleMs=3000";
    let page = await openDemo(context, server.url, query);
    await login(page, "bob");
    await server.faults({ mode: "slow", delayMs: 1500 });
    for (let i = 0; i < 20; i++) await page.evaluate((kg) => window.demo.outbox.saveWeight(kg), 80 + i / 10);
    const local = await entriesOf(page);
    assert.equal(local.length, 20);
    // Wait until uploads are in flight (the server holds them for 1.5 s), then crash the browser.
    await waitFor("uploads in flight", async () => Object.keys(await server.attempts()).length >= 3);
    const storedBeforeKill = (await server.records()).length;
    killBrowser(profile);
    await context.close().catch(() => {});
    assert.ok(storedBeforeKill < 20, "the kill happened mid-stream");

    await server.faults({ mode: "healthy" });
    context = await launch(profile);
    page = await openDemo(context, server.url, query);
    // localStorage (where the demo remembers who was logged in) is not flushed on a crash;
    // IndexedDB committed with strict durability is. Log in again if the session was lost.
    if (!(await page.evaluate(() => window.demo.outbox.currentUser))) await login(page, "bob");
    assert.equal((await entriesOf(page)).length, 20, "all 20 entries survived the crash");
    await waitFor("20 records on the server", async () => (await server.records()).length >= 20, { timeout: 40000 });
    await waitFor("all entries synced in the page", async () => (await entriesOf(page)).every((e) => e.backendId), { timeout: 20000 });
    await new Promise((r) => setTimeout(r, 500));
    assertExactlyOnce(await server.records(), await entriesOf(page));
    const attempts = await server.attempts();
    console.log(`  stored before kill: ${storedBeforeKill}; POSTs per key: max ${Math.max(...Object.values(attempts))}, keys resent after the crash: ${Object.values(attempts).filter((n) => n > 1).length}`);
  } finally {
    await context.close().catch(() => {});
    await server.stop();
    cleanup(profile, server.dataDir);
  }
});

test("(b2) a browser killed right after a login, or a logout, opens as it was left (not as localStorage had it on disk)", async () => {
  const server = await startServer();
  const profile = tempDir("profile-b2");
  let context = await launch(profile);
  try {
    let page = await openDemo(context, server.url);
    const recorded = () => page.evaluate(() => window.demo.loginRecord.read());
    await login(page, "dora");
    await waitFor("the login recorded", async () => (await recorded()) === "dora");
    // At once: Chromium writes localStorage to disk seconds later.
    killBrowser(profile);
    await context.close().catch(() => {});
    context = await launch(profile);
    page = await openDemo(context, server.url);
    assert.equal(await page.evaluate(() => window.demo.outbox.currentUser), "dora", "logged in as before the kill");
    assert.equal(await page.evaluate((key) => localStorage.getItem(key), "progress-demo.user"), "dora", "the login is in localStorage again");
    // The same for a logout.
    await page.click("#logout-btn");
    await waitFor("the logout recorded", async () => (await recorded()) === null);
    killBrowser(profile);
    await context.close().catch(() => {});
    context = await launch(profile);
    page = await openDemo(context, server.url);
    assert.equal(await page.evaluate(() => window.demo.outbox.currentUser), null, "logged out as before the kill");
  } finally {
    await context.close().catch(() => {});
    await server.stop();
    cleanup(profile, server.dataDir);
  }
});

test("(c) bad input in the form: the library's error is shown, nothing stored, nothing sent", async () => withDemo("profile-c", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "carol");
  assert.match(await page.textContent("#metric-rule"), /kg: a finite number more than 0 and at most 635 kg/, "the rule is shown next to the input");
  for (const [input, expected] of [["abc", /quantity\) must be a number, got the string "abc"/], ["0", /more than 0 and at most 635 kg \(got 0\)/], ["-5", /\(got -5\)/], ["700", /at most 635 kg \(got 700\)/], ["", /must be a number, got undefined/], ["1e400", /finite number .*\(got Infinity\)/]]) {
    await page.evaluate(() => { document.querySelector("#form-error").textContent = ""; });
    await saveViaForm(page, input);
    await waitFor(`the error for "${input}"`, async () => expected.test(await page.textContent("#form-error")));
  }
  await page.fill("#quantity", "70");
  await page.fill("#date", "2999-01-01T10:00");
  await page.click("#save");
  await waitFor("the future-date error", async () => /24 hours in the future/.test(await page.textContent("#form-error")));
  await new Promise((r) => setTimeout(r, 800));
  assert.equal((await entriesOf(page)).length, 0, "nothing stored locally");
  assert.equal(await page.evaluate(async () => (await window.demo.outbox.events({})).length), 0, "no outbox event");
  assert.equal(Object.keys(await server.attempts()).length, 0, "nothing sent");
  assert.equal(await page.locator("#entries li").count(), 0);
}));

test("(c2) a value typed while the previous save is still being stored stays in the form", async () => withDemo("profile-c2", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "cleo");
  // A value typed while the previous save is still being stored stays in the field (the form
  // emptied it once that save resolved). The save is held behind another connection's transaction.
  await page.evaluate(() => new Promise((held) => {
    const r = indexedDB.open("progress-outbox");
    r.onsuccess = () => {
      const db = r.result;
      const tx = db.transaction([...db.objectStoreNames], "readwrite");
      const store = tx.objectStore(db.objectStoreNames[0]);
      window.releaseHold = () => { window.holding = false; };
      window.holding = true;
      const spin = () => { store.get("none").onsuccess = () => { held(); if (window.holding) spin(); else db.close(); }; };
      spin();
    };
  }));
  await page.fill("#quantity", "70");
  await page.click("#save");
  await page.fill("#quantity", "71");
  await page.evaluate(() => window.releaseHold());
  await waitFor("the held save", async () => /Saved weight: 70 kg/.test(await page.textContent("#form-ok")));
  assert.equal(await page.inputValue("#quantity"), "71", "what was typed meanwhile is kept");
  await saveViaForm(page, 71);
  await waitFor("both stored", async () => (await entriesOf(page)).length === 2);
  assert.deepEqual((await entriesOf(page)).map((e) => e.quantity).sort(), [70, 71]);
}));

test("(d) a 422 shows in the failed panel; after the server is fixed, Retry delivers it", async () => withDemo("profile-d", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "dave");
  await server.faults({ mode: "status", status: 422 });
  await saveViaForm(page, 75.5);
  const item = page.locator("#failed li[data-event-id]");
  await item.waitFor({ timeout: 15000 });
  assert.match(await item.textContent(), /gave up/);
  assert.match(await item.textContent(), /HTTP 422/);
  assert.match(await item.textContent(), /Refused by the server/);
  assert.equal((await statsOf(page)).gaveUp, 1);
  assert.equal(await page.locator("#entries .badge.gaveup").count(), 1);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(Object.values(await server.attempts())[0], 1, "a permanent failure is not retried on its own");

  await server.faults({ mode: "healthy" });
  await item.locator("button").click();
  await waitFor("the record on the server", async () => (await server.records()).length === 1);
  await page.locator("#failed li[data-event-id]").waitFor({ state: "detached" });
  await page.locator("#entries .badge.synced").waitFor();
  assertExactlyOnce(await server.records(), await entriesOf(page));
}));

test("(e) after the first visit the app shell loads with the network cut", async () => withDemo("profile-e", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await login(page, "erin");
  await saveViaForm(page, 68.2);
  await waitFor("the upload", async () => (await server.records()).length === 1);
  await server.stop(); // the network is gone: connection refused for everything

  await page.reload();
  await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });
  assert.match(await page.textContent("#who"), /erin/);
  const entries = await entriesOf(page);
  assert.equal(entries.length, 1);
  assert.equal(entries[0].quantity, 68.2);
  // Saving still works offline; it waits in the outbox.
  await saveViaForm(page, 68.0);
  await page.waitForSelector('#entries li:has-text("68 kg")');
  assert.equal((await entriesOf(page)).length, 2);
}));

test("(f) dashboard screenshot (written to test-results/dashboard.png; UPDATE_SCREENSHOT=1 copies it to docs/)", async () => withDemo("profile-f", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "alice");
  const n = await page.evaluate(async () => {
    const o = window.demo.outbox, day = 86400000;
    let n = 0;
    for (let i = 0; i < 14; i++) {
      const date = Date.now() - (14 - i) * day;
      await o.saveWeight(Math.round((74.2 - i * 0.15 + (i % 3) * 0.2) * 10) / 10, { date }); n++;
      await o.save("steps", 6000 + ((i * 1733) % 5200), { date }); n++;
      if (i % 2 === 0) { await o.save("heartRate", 58 + (i % 5), { date }); n++; }
      if (i % 3 === 0) { await o.save("mood", 5 + (i % 4), { date }); n++; }
    }
    await o.save("bodyFat", 21.5, { date: Date.now() - 12 * day });
    await o.save("bodyFat", 20.8, { date: Date.now() - 3 * day });
    return n + 2;
  });
  await waitFor(`${n} records`, async () => (await server.records()).length === n, { timeout: 30000 });
  await server.faults({ mode: "status", status: 422 });
  await saveViaForm(page, 72.0);
  await page.locator("#failed li[data-event-id]").waitFor();
  await server.faults({ mode: "offline" });
  await saveViaForm(page, 71.9);
  await waitFor("a retrying failure", async () => (await statsOf(page)).retrying >= 1);
  // An edit and a delete of synced entries, waiting for the API to come back.
  const entries = await entriesOf(page);
  const edited = entries.find((e) => e.type === "weight" && e.backendId);
  const row = entryRow(page, edited.id);
  await row.locator("button.edit").click();
  await row.locator(".edit-quantity").fill(String(edited.quantity - 0.3));
  await row.locator(".edit-save").click();
  const removed = entries.find((e) => e.type === "steps" && e.backendId);
  await entryRow(page, removed.id).locator("button.delete").click();
  await waitForBadge(page, removed.id, "deleting");
  await page.selectOption("#fault-mode", "offline");
  await page.click("#fault-apply");
  await waitFor("health failing", async () => (await healthBanner(page)).health === "failing");
  await page.evaluate(() => { document.activeElement?.blur(); scrollTo(0, 0); });
  await page.waitForTimeout(400);
  const file = join(artifacts, "dashboard.png");
  await page.screenshot({ path: file });
  assert.ok(existsSync(file));
  if (process.env.UPDATE_SCREENSHOT) {
    mkdirSync(join(root, "docs"), { recursive: true });
    copyFileSync(file, join(root, "docs", "dashboard.png"));
  }
}, { viewport: { width: 1360, height: 1000 } }));

const METRIC_CASES = [
  // metric, unit, what the rule line says, a good value, a refused value and the library's words for it
  ["weight", "kg", /more than 0 and at most 635 kg/, "72.5", "0", /must be a finite number more than 0 and at most 635 kg \(got 0\)/],
  ["bodyFat", "%", /from 1 to 75 %/, "18.5", "80", /must be a finite number from 1 to 75 % \(got 80\)/],
  ["height", "cm", /from 30 to 300 cm/, "178", "20", /must be a finite number from 30 to 300 cm \(got 20\)/],
  ["steps", "count", /integer from 0 to 200000/, "8042", "1.5", /must be an integer from 0 to 200000 count \(got 1.5\)/],
  ["heartRate", "bpm", /integer from 20 to 300 bpm/, "62", "301", /must be an integer from 20 to 300 bpm \(got 301\)/],
  ["mood", "score", /integer from 1 to 10/, "7", "11", /must be an integer from 1 to 10 score \(got 11\)/],
];

test("(g) every metric through the form: unit and rule shown, bad input refused inline, each stored once with its unit, one chart per metric", async () => withDemo("profile-g", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "gina");
  for (const [metric, unit, rule, good, bad, refusal] of METRIC_CASES) {
    await page.selectOption("#metric", metric);
    assert.match(await page.textContent("#metric-rule"), rule, `${metric}: the rule next to the input`);
    assert.match(await page.textContent("#metric-rule"), new RegExp(`in ${unit.replace("%", "%")}:`), `${metric}: the unit next to the input`);
    assert.match(await page.textContent("#quantity-label"), new RegExp(`\\(${unit}\\)`), `${metric}: the unit on the label`);
    await page.evaluate(() => { document.querySelector("#form-error").textContent = ""; });
    await saveViaForm(page, bad, metric);
    await waitFor(`${metric}: the refusal of ${bad}`, async () => refusal.test(await page.textContent("#form-error")));
    assert.match(await page.textContent("#form-error"), new RegExp(`save\\("${metric}", quantity\\)`), "the library's own message");
    await saveViaForm(page, good, metric);
    await page.locator(`#entries li[data-metric="${metric}"]`).waitFor();
  }
  assert.equal((await entriesOf(page)).length, 6, "only the good values were stored");
  await waitFor("6 records on the server", async () => (await server.records()).length === 6);
  await waitFor("all 6 synced in the page", async () => (await page.locator("#entries .badge.synced").count()) === 6);
  const records = await server.records();
  for (const [metric, unit, , good] of METRIC_CASES) {
    const r = records.filter((x) => x.type === metric);
    assert.equal(r.length, 1, `${metric} stored once`);
    assert.equal(r[0].unit, unit);
    assert.equal(r[0].quantity, Number(good));
  }
  assertExactlyOnce(records, await entriesOf(page));
  assert.equal(Object.keys(await server.attempts()).length, 6, "refused input sent nothing");
  // A chart per metric, each with its one dot filled (synced).
  await waitFor("6 charts with synced dots", async () => (await page.locator("#charts .chart .dot.synced").count()) === 6);
  assert.deepEqual(await page.$$eval("#charts .chart", (els) => els.map((e) => e.dataset.metric)), METRIC_CASES.map((c) => c[0]));
  assert.equal(await page.locator("#charts .dot.unsynced").count(), 0);
  // The entry filter shows one metric.
  await page.selectOption("#entries-metric", "steps");
  await waitFor("the filter", async () => (await page.locator("#entries li").count()) === 1);
  assert.match(await page.textContent("#entries li"), /8042 steps/);
}));

test("(h) edit and delete through the UI, offline and back: badges go uploading/retrying/waiting/deleting to synced, the server ends equal to the device", async () => withDemo("profile-h", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "hugo");
  await server.faults({ mode: "slow", delayMs: 2500 }); // under ?fast's 4 s request timeout
  await saveViaForm(page, 70.1);
  const [first] = await entriesOf(page);
  await waitForBadge(page, first.id, "uploading"); // the server holds the request for 2.5 s
  const synced = await waitForBadge(page, first.id, "synced");
  assert.match(synced, /^synced · srv-\d+$/, "the badge shows the backend id");

  // An edit while the API resets connections: the update is sent, fails, retries.
  await server.faults({ mode: "offline" });
  const row = entryRow(page, first.id);
  await row.locator("button.edit").click();
  await row.locator(".edit-quantity").fill("abc");
  await row.locator(".edit-save").click();
  await waitFor("the inline refusal", async () => /must be a number, got the string "abc"/.test(await row.locator(".row-error").textContent()));
  assert.equal((await eventsOf(page)).length, 1, "a refused edit writes no event");
  await row.locator(".edit-quantity").fill("70.4");
  await row.locator(".edit-save").click();
  await waitFor("the edited row", async () => /70\.4 kg/.test(await entryRow(page, first.id).textContent()));
  const retrying = await waitForBadge(page, first.id, "retrying");
  assert.match(retrying, /edit/);

  // A save whose create was sent (and failed), then edited: the update waits behind the create.
  await saveViaForm(page, 71);
  const second = (await entriesOf(page)).find((e) => e.quantity === 71);
  await waitFor("the create sent once", async () => (await eventsOf(page)).some((e) => e.entityId === second.id && e.requestCount >= 1));
  const row2 = entryRow(page, second.id);
  await row2.locator("button.edit").click();
  // A list render (here forced; otherwise any upload result) while the edit form is open keeps
  // the focus in it: typing right after goes into the field, not nowhere (a CI run lost "71.5").
  const renders = await page.evaluate(() => new Promise((resolve) => {
    const seen = new MutationObserver(() => { seen.disconnect(); resolve(document.activeElement?.className); });
    seen.observe(document.querySelector("#entries"), { attributes: true, attributeFilter: ["data-renders"] });
    document.querySelector("#entries-metric").dispatchEvent(new Event("change"));
  }));
  assert.equal(renders, "edit-quantity", "the edit field keeps the focus through a render");
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.insertText("71.5");
  await row2.locator(".edit-save").click();
  await waitFor("the second edited row", async () => /71\.5 kg/.test(await entryRow(page, second.id).textContent()));
  const waiting = await waitForBadge(page, second.id, "waiting");
  assert.match(waiting, /edit/);
  assert.match((await badgeOf(page, second.id)).title, /earlier create/);

  await server.faults({ mode: "healthy" });
  await waitForBadge(page, first.id, "synced", { timeout: 30000 });
  await waitForBadge(page, second.id, "synced", { timeout: 30000 });
  let records = await server.records();
  assert.equal(records.find((r) => r.localId === first.id).quantity, 70.4, "the edit reached the server");
  assert.equal(records.find((r) => r.localId === second.id).quantity, 71.5, "the queued edit reached the server after its create");

  // Delete while the API is down: the row stays, struck through, "deleting", until the server confirms.
  await server.faults({ mode: "offline" });
  await entryRow(page, first.id).locator("button.delete").click();
  await waitForBadge(page, first.id, "deleting");
  assert.equal((await badgeOf(page, first.id)).deleted, true, "shown as deleted");
  assert.equal((await entriesOf(page)).some((e) => e.id === first.id), false, "gone from entries()");
  await server.faults({ mode: "healthy" });
  await waitForBadge(page, first.id, null, { timeout: 30000 });
  const all = await server.allRecords();
  assert.equal(all.find((r) => r.localId === first.id).deleted, true, "deleted on the server");

  // Saved and deleted while the platform is offline: nothing of it is ever sent.
  await context.setOffline(true);
  await saveViaForm(page, 69.9);
  const third = (await entriesOf(page)).find((e) => e.quantity === 69.9);
  await waitForBadge(page, third.id, "pending");
  await entryRow(page, third.id).locator("button.delete").click();
  await waitForBadge(page, third.id, null);
  assert.equal((await eventsOf(page)).filter((e) => e.entityId === third.id).length, 0, "the unsent create and its entry are gone");
  await context.setOffline(false);
  await page.evaluate(() => window.demo.outbox.processNow());

  // The server equals the device, and every Idempotency-Key was accepted once.
  records = await server.records();
  const local = await entriesOf(page);
  assertExactlyOnce(records, local);
  for (const e of local) {
    const r = records.find((x) => x.localId === e.id);
    assert.deepEqual([r.quantity, Date.parse(r.date), r.type], [e.quantity, e.date, e.type]);
    assert.equal(String(r.id), e.backendId);
  }
  assert.equal((await server.allRecords()).some((r) => r.localId === third.id), false, "never sent");
  const events = await eventsOf(page);
  assert.deepEqual(events.filter((e) => e.status !== "completed"), [], "nothing left to send");
  assert.deepEqual(events.map((e) => e.operation).sort(), ["create", "create", "delete", "update", "update"]);
}));

/** Forces a render of the entries list (as any upload result does) and resolves once it is over. */
const forceRender = (page) => page.evaluate(() => new Promise((resolve) => {
  const list = document.querySelector("#entries");
  const seen = new MutationObserver(() => { seen.disconnect(); resolve(); });
  seen.observe(list, { attributes: true, attributeFilter: ["data-renders"] });
  document.querySelector("#entries-metric").dispatchEvent(new Event("change"));
}));

test("(h2) the form and the list under a user's hands: a double click saves once, 10,000 steps are 10,000, a half-filled date is refused, a click and the focus survive a render, logout clears the screen", async () => withDemo("profile-h2", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "lena");
  await server.faults({ mode: "offline" }); // nothing syncs: only the renders this test makes

  // A double click on Save (two submits while the first is being stored): one entry.
  await page.fill("#quantity", "80.5");
  await page.dblclick("#save");
  await page.waitForFunction(() => document.querySelector("#form-ok").textContent);
  await page.waitForTimeout(300);
  assert.deepEqual((await entriesOf(page)).map((e) => e.quantity), [80.5], "saved once");

  // Thousands separators: whole steps for a metric that counts; refused (as typed) for weight.
  await saveViaForm(page, "10,000", "steps");
  assert.match(await page.textContent("#form-ok"), /10000 count|10,000 count/);
  await saveViaForm(page, "1,234", "weight");
  assert.match(await page.textContent("#form-error"), /1,234/);
  await saveViaForm(page, "72.125", "weight"); // a decimal point is never a thousands separator for weight
  assert.match(await page.textContent("#form-ok"), /Saved weight: 72\.1/);
  assert.deepEqual((await entriesOf(page)).map((e) => e.quantity).sort((a, b) => a - b), [72.125, 80.5, 10000], "10,000 steps stored as 10000; 1,234 kg not stored; 72.125 kg as typed");

  // A half-filled date (the day typed, no time) is refused, not saved with the current time.
  await page.fill("#quantity", "70");
  await page.click("#date");
  await page.keyboard.type("01152025");
  assert.equal(await page.evaluate(() => document.querySelector("#date").validity.badInput), true, "the date input holds a half-filled date");
  await page.click("#save");
  await waitFor("the refusal", async () => /Complete the date/.test(await page.textContent("#form-error")));
  assert.equal((await entriesOf(page)).length, 3, "nothing saved");
  await page.fill("#date", "");

  // A click whose press and release straddle a render still lands; the keyboard focus stays.
  // (The rows settle first: an upload result changes a row, and a changed row is rebuilt.)
  await server.faults({ mode: "healthy" });
  const [weight] = (await entriesOf(page)).filter((e) => e.type === "weight");
  for (const e of await entriesOf(page)) await waitForBadge(page, e.id, "synced", { timeout: 30000 });
  const edit = entryRow(page, weight.id).locator("button.edit");
  const box = await edit.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await forceRender(page);
  await page.mouse.up();
  await waitFor("the edit form opened by the click", async () => (await entryRow(page, weight.id).locator(".edit-form").count()) === 1);
  await entryRow(page, weight.id).locator(".edit-cancel").click();
  await waitFor("the plain row back", async () => (await entryRow(page, weight.id).locator("button.edit").count()) === 1);
  await entryRow(page, weight.id).locator("button.delete").focus();
  await forceRender(page);
  assert.equal(await page.evaluate(() => document.activeElement?.className), "link delete", "the focused Delete button keeps the focus through a render");

  // Logout right after a save: nothing of the previous user stays on screen.
  await saveViaForm(page, 8, "mood");
  assert.match(await page.textContent("#form-ok"), /Saved mood/);
  await page.evaluate(async () => {
    await window.demo.outbox.save("mood", 7);
    document.querySelector("#logout-btn").click();
  });
  await page.waitForTimeout(1500);
  const screen = await page.evaluate(() => ({
    ok: document.querySelector("#form-ok").textContent,
    healthHidden: document.querySelector("#health").hidden,
    tiles: [...document.querySelectorAll("#dashboard .n")].map((n) => n.textContent),
  }));
  assert.equal(screen.ok, "", "the last message is gone");
  assert.equal(screen.healthHidden, true, "no health banner with nobody logged in");
  assert.ok(screen.tiles.every((t) => t === "–"), `no counts with nobody logged in: ${screen.tiles}`);
}));

test("(i) the health banner: ok, offline (platform), stalled (API unreachable), failing (refused), and back to ok", async () => withDemo("profile-i", async ({ server, context }) => {
  const page = await openDemo(context, server.url, "fast=1&stalledMs=1500");
  // Logged out: no banner on screen. (The attribute alone is not enough: a CSS display rule once
  // drew an empty box with the attribute set.)
  assert.equal(await page.isVisible("#health"), false, "no health banner before login");
  assert.equal(await page.isVisible("#banner"), false, "no notice before anything happened");
  await login(page, "iris");
  await waitFor("health ok", async () => (await healthBanner(page)).health === "ok");
  assert.equal(await page.isVisible("#health"), true);
  assert.match((await healthBanner(page)).text, /Syncing normally.*Nothing to do/);

  await context.setOffline(true);
  const offline = await waitFor("health offline", async () => { const h = await healthBanner(page); return h.health === "offline" && h; });
  assert.match(offline.text, /Offline.*no network.*resume by themselves/);
  await saveViaForm(page, 65.5);
  const [entry] = await entriesOf(page);
  await waitForBadge(page, entry.id, "pending");
  await context.setOffline(false);
  await waitFor("health ok again", async () => (await healthBanner(page)).health === "ok");
  await waitForBadge(page, entry.id, "synced");

  // The API resets every connection: no answers, so not "failing"; after stalledMs: "stalled".
  await server.faults({ mode: "offline" });
  await saveViaForm(page, 65.4);
  const stalled = await waitFor("health stalled", async () => { const h = await healthBanner(page); return h.health === "stalled" && h; }, { timeout: 15000 });
  assert.match(stalled.text, /stalled.*Sync now/);
  await server.faults({ mode: "healthy" });
  await waitFor("health ok after recovery", async () => (await healthBanner(page)).health === "ok", { timeout: 15000 });

  // A refused save (422 gives up at once): "failing", with what to do.
  await server.faults({ mode: "status", status: 422 });
  await saveViaForm(page, 65.3);
  const failing = await waitFor("health failing", async () => { const h = await healthBanner(page); return h.health === "failing" && h; });
  assert.match(failing.text, /Uploads are failing.*1 change gave up.*Retry/);
  await server.faults({ mode: "healthy" });
  await page.locator("#failed li[data-event-id] button").click();
  await waitFor("health ok after Retry", async () => (await healthBanner(page)).health === "ok");
  await waitFor("the retried entry on the server", async () => (await server.records()).length === 3);
  assertExactlyOnce(await server.records(), await entriesOf(page));
}));

test("(j) persistence and storage use are shown; the fault switch's redirect mode is explained and never followed", async () => withDemo("profile-j", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "jack");
  const stats = await statsOf(page);
  await waitFor("storage shown", async () => /used of .* available/.test(await page.textContent("#storage")));
  assert.equal(await page.getAttribute("#persisted", "data-persisted"), String(stats.persisted));
  assert.match(await page.textContent("#persisted"), stats.persisted ? /persistent/ : /best-effort/);
  assert.ok(stats.storage && stats.storage.quota > 0, JSON.stringify(stats.storage));

  // Redirect, chosen in the developer panel: a transient failure, explained; the target never reached.
  await page.selectOption("#fault-mode", "redirect");
  await page.selectOption("#fault-redirect", "308");
  await page.click("#fault-apply");
  await waitFor("the fault applied", async () => (await server.api("/api/v1/faults")).body.mode === "redirect");
  assert.equal((await server.api("/api/v1/faults")).body.redirectStatus, 308);
  await saveViaForm(page, 77.7);
  const item = page.locator("#failed li[data-event-id]");
  await item.waitFor();
  assert.match(await item.textContent(), /redirected the upload\. Redirects are never followed/);
  const [entry] = await entriesOf(page);
  await waitForBadge(page, entry.id, "retrying");
  assert.equal((await server.api("/api/v1/debug/elsewhere")).body.count, 0, "the redirect target never got the data");
  await page.selectOption("#fault-mode", "healthy");
  await page.click("#fault-apply");
  await waitForBadge(page, entry.id, "synced", { timeout: 20000 });
  assertExactlyOnce(await server.records(), await entriesOf(page));
  assert.equal(await page.textContent("#elsewhere-count"), "0");
}));

test("(k) ?batch=1: saves travel through the batch endpoint, each stored once", async () => withDemo("profile-k", async ({ server, context }) => {
  const page = await openDemo(context, server.url, "fast=1&batch=1");
  assert.equal(await page.isChecked("#batch-toggle"), true);
  assert.match(await page.textContent("#upload-mode"), /batches/);
  await login(page, "kim");
  await server.faults({ mode: "offline" });
  for (const [metric, q] of [["weight", 80], ["steps", 1200], ["mood", 6], ["heartRate", 71]]) {
    await saveViaForm(page, q, metric);
    await page.locator(`#entries li[data-metric="${metric}"]`).waitFor();
  }
  await server.faults({ mode: "healthy" });
  await waitFor("4 records", async () => (await server.records()).length === 4, { timeout: 20000 });
  await waitFor("all synced", async () => (await page.locator("#entries .badge.synced").count()) === 4);
  const writes = (await server.requests()).filter((r) => r.method !== "GET" && r.path.startsWith("/api/v1/progress"));
  assert.ok(writes.length > 0 && writes.every((r) => r.path === "/api/v1/progress/batch"), `every upload went to the batch endpoint: ${JSON.stringify(writes.map((r) => r.path))}`);
  assert.ok(writes.some((r) => r.status === 200 && r.keys && r.keys.length > 1), "several events in one batch");
  assertExactlyOnce(await server.records(), await entriesOf(page));
  assert.match(await page.textContent('#dashboard [data-k="batchEvents"]'), /^\d+$/, "the batch size is shown");
  // Edit and delete travel in batches too.
  const weight = (await entriesOf(page)).find((e) => e.type === "weight");
  const row = entryRow(page, weight.id);
  await row.locator("button.edit").click();
  await row.locator(".edit-quantity").fill("80.5");
  await row.locator(".edit-save").click();
  const mood = (await entriesOf(page)).find((e) => e.type === "mood");
  await entryRow(page, mood.id).locator("button.delete").click();
  await waitFor("the edit and the delete on the server", async () => {
    const all = await server.allRecords();
    return all.find((r) => r.localId === weight.id).quantity === 80.5 && all.find((r) => r.localId === mood.id).deleted === true;
  }, { timeout: 20000 });
  await waitForBadge(page, weight.id, "synced");
  await waitForBadge(page, mood.id, null);
  const after = (await server.requests()).filter((r) => r.method !== "GET" && r.path.startsWith("/api/v1/progress"));
  assert.ok(after.every((r) => r.path === "/api/v1/progress/batch"));
}));

test("the dev API keeps records across a restart and honours Idempotency-Key", async () => {
  const server = await startServer();
  try {
    const { body: { token } } = await server.api("/api/v1/login", { method: "POST", body: JSON.stringify({ userId: "zed" }) });
    const post = (key, body, headers = {}) => server.api("/api/v1/progress", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, ...(key ? { "Idempotency-Key": key } : {}), ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const good = { localId: "l1", type: "weight", quantity: 70.5, unit: "kg", date: "2026-11-26T07:30:00.000Z" };
    const first = await post("k1", good);
    assert.equal(first.status, 201);
    assert.match(first.body.id, /^srv-/);
    const again = await post("k1", good);
    assert.deepEqual([again.status, again.body], [201, first.body], "a repeated key gets the first response");
    assert.equal((await post("k1", { ...good, quantity: 71 })).status, 422, "same key, different body");
    assert.equal((await post("k2", "{not json")).status, 400);
    assert.equal((await post("k3", { ...good, quantity: "70" })).status, 422);
    assert.equal((await post("k4", { ...good, localId: undefined })).status, 422);
    assert.equal((await post(null, good)).status, 400, "Idempotency-Key is required");
    assert.equal((await post("k5", JSON.stringify({ ...good, pad: "x".repeat(20000) }))).status, 413);
    assert.equal((await server.api("/api/v1/progress", { method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": "k6" }, body: JSON.stringify(good) })).status, 401);
    assert.equal((await post("k7", good, { Authorization: "Bearer forged.token" })).status, 401);
    await server.faults({ mode: "ratelimit", retryAfter: 7 });
    const limited = await fetch(server.url + "/api/v1/progress", { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, "Idempotency-Key": "k8" }, body: JSON.stringify(good) });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "7");
    assert.equal((await server.faults({ mode: "nonsense" })).status, 422);

    await server.stop();
    const restarted = await startServer({ dataDir: server.dataDir });
    try {
      const rows = await restarted.records();
      assert.equal(rows.length, 1, "records survive a restart");
      assert.equal(rows[0].userId, "zed");
      const replay = await restarted.api("/api/v1/progress", { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, "Idempotency-Key": "k1" }, body: JSON.stringify(good) });
      assert.deepEqual(replay.body, first.body, "idempotency survives a restart too");
    } finally {
      await restarted.stop();
    }
  } finally {
    await server.stop();
    cleanup(server.dataDir);
  }
});
