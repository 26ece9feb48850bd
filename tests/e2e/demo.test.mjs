// End-to-end: the demo PWA in real Chromium against the dev API, with the API, the network and
// the browser itself failing. The claim under test: every measurement reaches the server exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { artifacts, cleanup, countByLocalId, killBrowser, launch, login, openDemo, root, saveViaForm, startServer, tempDir, waitFor, withDemo } from "./helpers.mjs";

const entriesOf = (page) => page.evaluate(() => window.demo.outbox.entries());
const statsOf = (page) => page.evaluate(() => window.demo.outbox.stats());

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
  await new Promise((r) => setTimeout(r, 500));
  const entries = await entriesOf(page);
  assertExactlyOnce(await server.records(), entries);
  assert.equal(await page.locator("#entries .badge.synced").count(), 5);
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

test("(c) bad input in the form: the library's error is shown, nothing stored, nothing sent", async () => withDemo("profile-c", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "carol");
  for (const [input, expected] of [["abc", /must be a number of kilograms/], ["0", /more than 0 kg/], ["-5", /more than 0 kg/], ["700", /at most 635 kg/], ["", /must be a number of kilograms, got undefined/], ["1e400", /finite/]]) {
    await saveViaForm(page, input);
    await waitFor(`the error for "${input}"`, async () => expected.test(await page.textContent("#form-error")));
  }
  await page.fill("#kg", "70");
  await page.fill("#date", "2999-01-01T10:00");
  await page.click("#save");
  await waitFor("the future-date error", async () => /24 hours in the future/.test(await page.textContent("#form-error")));
  await new Promise((r) => setTimeout(r, 800));
  assert.equal((await entriesOf(page)).length, 0, "nothing stored locally");
  assert.equal(await page.evaluate(async () => (await window.demo.outbox.events({})).length), 0, "no outbox event");
  assert.equal(Object.keys(await server.attempts()).length, 0, "nothing sent");
  assert.equal(await page.locator("#entries li").count(), 0);
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

test("(f) dashboard screenshot (written to test-results/dashboard.png)", async () => withDemo("profile-f", async ({ server, context }) => {
  const page = await openDemo(context, server.url);
  await login(page, "alice");
  const day = 86400000;
  for (let i = 0; i < 14; i++) {
    await page.evaluate(([kg, date]) => window.demo.outbox.saveWeight(kg, { date }), [Math.round((74.2 - i * 0.15 + (i % 3) * 0.2) * 10) / 10, Date.now() - (14 - i) * day]);
  }
  await waitFor("14 records", async () => (await server.records()).length === 14);
  await server.faults({ mode: "status", status: 422 });
  await saveViaForm(page, 72.0);
  await page.locator("#failed li[data-event-id]").waitFor();
  await server.faults({ mode: "offline" });
  await saveViaForm(page, 71.9);
  await waitFor("a retrying failure", async () => (await statsOf(page)).retrying >= 1);
  await page.selectOption("#fault-mode", "offline");
  await page.click("#fault-apply");
  await page.waitForTimeout(400);
  const file = join(artifacts, "dashboard.png");
  await page.screenshot({ path: file });
  assert.ok(existsSync(file));
  if (process.env.UPDATE_SCREENSHOT) {
    mkdirSync(join(root, "docs"), { recursive: true });
    copyFileSync(file, join(root, "docs", "dashboard.png"));
  }
}, { viewport: { width: 1360, height: 860 } }));

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
