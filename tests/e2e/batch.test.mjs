// End-to-end: batches (CONTRACT §2b) against the real dev API (its own process), in Chromium,
// on a bare page of the dev server that imports the built package (/pkg/index.js).
// - The browser is SIGKILLed while a batch is in flight and relaunched on the same profile:
//   every entry is stored exactly once (the server replays the batch's keys).
// - A batch answer cut off mid-body (fault mode "truncate") completes nothing; the retry succeeds
//   without storing anything twice.
// - Per-item faults: item 3 answered 422 and item 5 503 with retryAfter end in their own states,
//   the others complete.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cleanup, countByLocalId, killBrowser, launch, openOutbox, requestLog, startServer, tempDir, waitFor } from "./helpers.mjs";

const BATCH = { batchEndpoint: "/api/v1/progress/batch", processingIntervalMs: 100, backoffMs: [300, 600], requestTimeoutMs: 10000, persist: false };

/** Saves `n` step counts for `user` (before start(): they go out together). */
function saveMany(page, user, n, base = 1000) {
  return page.evaluate(async ([user, n, base]) => {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push((await window.outbox.save("steps", base + i, { userId: user })).id);
    return ids;
  }, [user, n, base]);
}

const events = (page, user) => page.evaluate((user) => window.outbox.events({ userId: user }), user);
const entries = (page, user) => page.evaluate((user) => window.outbox.entries(user), user);

async function withServer(tag, body) {
  const server = await startServer();
  const profile = tempDir(tag);
  let context = await launch(profile);
  const relaunch = async () => {
    context = await launch(profile);
    return context;
  };
  try {
    return await body({ server, profile, context, relaunch });
  } finally {
    await context.close().catch(() => {});
    await server.stop();
    cleanup(profile, server.dataDir);
  }
}

test("the browser killed mid-batch and relaunched: every entry stored once", async () => withServer("batch-kill", async ({ server, profile, context, relaunch }) => {
  // The server holds each write 4 s, so batches are in flight when the page is frozen (its
  // JavaScript paused through the DevTools protocol): the server stores them and answers, the
  // page never reads the answers, and the browser is SIGKILLed in that window.
  await server.faults({ latencyMs: 4000 });
  let page = await openOutbox(context, server.url, { ...BATCH, dbName: "e2e-batch-kill" });
  const ids = await saveMany(page, "kb", 25);
  await page.evaluate(() => window.outbox.start("kb"));
  const batchesSent = async () => (await requestLog(server)).filter((r) => r.path === "/api/v1/progress/batch");
  await waitFor("a batch in flight", async () => (await batchesSent()).some((r) => r.status === null && r.keys));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Debugger.enable");
  await cdp.send("Debugger.pause");
  await waitFor("the server to store and answer every batch sent", async () => {
    const sent = await batchesSent();
    return sent.length && sent.every((r) => r.status === 200) ? sent : null;
  }, { timeout: 10000 });
  const orphaned = (await batchesSent()).flatMap((r) => r.keys);
  const storedBeforeCrash = (await server.records()).filter((r) => r.userId === "kb").length;
  assert.equal(storedBeforeCrash, orphaned.length, "the server stored every item it was sent");
  killBrowser(profile);
  await context.close().catch(() => {});
  await server.faults({ latencyMs: 0 });

  const second = await relaunch();
  page = await openOutbox(second, server.url, { ...BATCH, dbName: "e2e-batch-kill" });
  const before = await events(page, "kb");
  const stranded = before.filter((e) => orphaned.includes(e.id));
  assert.equal(stranded.length, orphaned.length, "the sent batches' events survived the crash");
  assert.ok(stranded.every((e) => e.status === "processing"), `the answers were never recorded: ${stranded.map((e) => e.status)}`);
  assert.ok((await entries(page, "kb")).every((e) => e.backendId === null));
  const crashAt = Date.now();
  await page.evaluate(() => window.outbox.start("kb"));
  await waitFor("every entry acknowledged", async () => (await entries(page, "kb")).every((e) => e.backendId), { timeout: 30000 });

  const records = (await server.records()).filter((r) => r.userId === "kb");
  assert.equal(records.length, 25, `25 entries, ${records.length} records`);
  const counts = countByLocalId(records);
  for (const id of ids) assert.equal(counts.get(id), 1, `entry ${id} stored ${counts.get(id) || 0} times`);
  const local = await entries(page, "kb");
  for (const e of local) assert.equal(records.find((r) => r.localId === e.id).id, e.backendId, "the device holds the server's id (the replayed answer)");
  // The stranded events were sent again with their keys, and answered from the server's key store.
  const resent = new Set((await batchesSent()).filter((r) => r.at >= crashAt).flatMap((r) => r.keys));
  for (const k of orphaned) assert.ok(resent.has(k), `key ${k} of a stranded batch was sent again`);
  const attempts = await server.attempts();
  for (const k of orphaned) assert.equal(attempts[k], 2, `key ${k}: sent before the crash and once after`);
  const evs = await events(page, "kb");
  assert.ok(evs.every((e) => e.status === "completed"));
}));

test("a batch answer cut off mid-body completes nothing, then the retry succeeds without duplicates", async () => withServer("batch-truncate", async ({ server, context }) => {
  await server.faults({ mode: "truncate" });
  const page = await openOutbox(context, server.url, { ...BATCH, backoffMs: [60000], dbName: "e2e-batch-truncate" });
  const ids = await saveMany(page, "tr", 6);
  await page.evaluate(() => window.outbox.start("tr"));
  await waitFor("the batch to fail", async () => (await events(page, "tr")).every((e) => e.status === "failed"));
  const failed = await events(page, "tr");
  for (const e of failed) {
    assert.equal(e.completedAt, null);
    assert.equal(e.gaveUp, false, "an incomplete answer is retried");
    assert.match(e.errorMessage, /batch/);
  }
  assert.ok((await entries(page, "tr")).every((e) => e.backendId === null), "no backend id from a cut-off answer");
  const stored = (await server.records()).filter((r) => r.userId === "tr");
  assert.equal(stored.length, 6, "the server had stored them before the answer was cut");

  await server.faults({ mode: "healthy" });
  await page.evaluate(async () => {
    const failed = await window.outbox.events({ userId: "tr", status: "failed" });
    await window.outbox.resetForRetry(failed.map((e) => e.id));
    await window.outbox.processNow();
  });
  await waitFor("every event completed", async () => (await events(page, "tr")).every((e) => e.status === "completed"));
  const records = (await server.records()).filter((r) => r.userId === "tr");
  assert.equal(records.length, 6, "replayed by key, nothing stored twice");
  const local = await entries(page, "tr");
  for (const id of ids) {
    const e = local.find((x) => x.id === id);
    assert.equal(e.backendId, records.find((r) => r.localId === id).id);
  }
  const batches = (await requestLog(server)).filter((r) => r.path === "/api/v1/progress/batch");
  assert.ok(batches.length >= 2);
}));

test("item 3 answered 422 and item 5 answered 503 with retryAfter each end in their own state", async () => withServer("batch-items", async ({ server, context }) => {
  await server.faults({ itemFaults: [{ index: 3, status: 422, error: "quantity refused for this test" }, { index: 5, status: 503, retryAfter: 30, error: "busy" }] });
  const page = await openOutbox(context, server.url, { ...BATCH, backoffMs: [1000], dbName: "e2e-batch-items" });
  await saveMany(page, "it", 8);
  await page.evaluate(() => window.outbox.start("it"));
  await waitFor("every item answered", async () => (await events(page, "it")).every((e) => e.status === "completed" || e.status === "failed"));
  const [batch, ...more] = (await requestLog(server)).filter((r) => r.path === "/api/v1/progress/batch");
  assert.equal(more.length, 0, "eight events, one batch");
  assert.equal(batch.keys.length, 8);
  const evs = await events(page, "it");
  const byKey = new Map(evs.map((e) => [e.id, e]));
  const refused = byKey.get(batch.keys[3]);
  assert.equal(refused.status, "failed");
  assert.equal(refused.gaveUp, true);
  assert.match(refused.errorMessage, /422/);
  assert.match(refused.errorMessage, /quantity refused for this test/);
  const busy = byKey.get(batch.keys[5]);
  assert.equal(busy.status, "failed");
  assert.equal(busy.gaveUp, false);
  assert.equal(busy.attemptCount, 1);
  assert.ok(busy.nextAttemptAt - busy.lastAttemptAt >= 30000, `retried after its retryAfter (30 s), not the 1 s backoff: ${busy.nextAttemptAt - busy.lastAttemptAt} ms`);
  for (const [i, key] of batch.keys.entries()) {
    if (i === 3 || i === 5) continue;
    assert.equal(byKey.get(key).status, "completed", `item ${i}`);
  }
  const records = (await server.records()).filter((r) => r.userId === "it");
  assert.equal(records.length, 6);
  const local = await entries(page, "it");
  for (const [i, key] of batch.keys.entries()) {
    const e = local.find((x) => x.id === byKey.get(key).entityId);
    if (i === 3 || i === 5) assert.equal(e.backendId, null, `item ${i} was not stored`);
    else assert.equal(e.backendId, records.find((r) => r.localId === e.id).id, `item ${i}`);
  }
  const stats = await page.evaluate(() => window.outbox.stats("it"));
  assert.deepEqual([stats.completed, stats.gaveUp, stats.retrying, stats.health], [6, 1, 1, "failing"]);
}));
