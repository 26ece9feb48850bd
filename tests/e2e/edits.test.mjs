// End-to-end: edits and deletes against the real dev API (its own process), in Chromium, on a
// bare page of the dev server that imports the built package (/pkg/index.js).
// - Entries edited and deleted while the server is unreachable (fault mode "offline") reach it
//   once it is back: its state (GET /api/v1/progress?all=1, &deleted=1) equals the device's
//   entries(), and no Idempotency-Key was answered twice (replay off, so a duplicate would be
//   stored twice).
// - An update written while its create is in flight (fault mode "slow") reaches the server after
//   the create's answer, addressed by the create's id.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cleanup, countByLocalId, launch, openOutbox, requestLog, startServer, tempDir, waitFor } from "./helpers.mjs";

/** Every record, deleted ones included ({deleted: true}). */
const allRecords = async (server) => (await server.api("/api/v1/progress?all=1&deleted=1")).body;

const FAST = { processingIntervalMs: 100, backoffMs: [200, 400], requestTimeoutMs: 5000, persist: false };

/** Waits until every event of `user` is completed; returns the events. */
async function drained(page, user, timeout = 20000) {
  return waitFor(`every event of ${user} completed`, async () => {
    const evs = await page.evaluate((user) => window.outbox.events({ userId: user }), user);
    return evs.length && evs.every((e) => e.status === "completed") ? evs : null;
  }, { timeout });
}

/** Asserts the server's records of `user` are the device's entries, value for value. */
function assertSameState(device, serverLive, serverAll, deletedIds) {
  assert.equal(serverLive.length, device.length, `server has ${serverLive.length} live records, the device ${device.length} entries`);
  const byId = new Map(serverLive.map((r) => [r.id, r]));
  for (const e of device) {
    const r = byId.get(e.backendId);
    assert.ok(r, `entry ${e.id} (backend id ${e.backendId}) is on the server`);
    assert.deepEqual(
      { localId: r.localId, userId: r.userId, type: r.type, quantity: r.quantity, unit: r.unit, date: r.date },
      { localId: e.id, userId: e.userId, type: e.type, quantity: e.quantity, unit: e.unit, date: new Date(e.date).toISOString() },
    );
  }
  const counts = countByLocalId(serverAll);
  for (const [localId, n] of counts) assert.equal(n, 1, `entry ${localId} stored ${n} times`);
  for (const id of deletedIds) {
    const r = serverAll.find((x) => x.localId === id);
    if (r) assert.equal(r.deleted, true, `entry ${id} was deleted on the device but not on the server`);
  }
}

test("edits and deletes made offline reach the server on reconnect: its state equals the device's, every key answered once", async () => {
  const server = await startServer();
  const profile = tempDir("edits-offline");
  const context = await launch(profile);
  try {
    await server.faults({ replay: false });
    const page = await openOutbox(context, server.url, { ...FAST, dbName: "e2e-edits" });
    const ids = await page.evaluate(async () => {
      const o = window.outbox;
      o.start("ed");
      const save = async (m, q, d) => (await o.save(m, q, { date: new Date(d) })).id;
      return {
        a: await save("weight", 80, "2026-11-01T07:00:00Z"),
        b: await save("steps", 9000, "2026-11-02T07:00:00Z"),
        c: await save("mood", 6, "2026-11-03T07:00:00Z"),
        d: await save("heartRate", 61, "2026-11-04T07:00:00Z"),
      };
    });
    await drained(page, "ed");
    assert.equal((await server.records()).length, 4);

    // The server goes away; the user edits, deletes and adds.
    await server.faults({ mode: "offline" });
    const offline = await page.evaluate(async (ids) => {
      const o = window.outbox;
      await o.update(ids.a, { quantity: 79.4 });
      await o.update(ids.a, { quantity: 79.1 });
      await o.update(ids.b, { date: new Date("2026-11-02T21:00:00Z") });
      await o.delete(ids.c);
      await o.update(ids.d, { quantity: 64 });
      await o.delete(ids.d);
      const e = (await o.save("bodyFat", 21.5, { date: new Date("2026-11-05T07:00:00Z") })).id;
      await new Promise((r) => setTimeout(r, 300)); // its create is tried (and gets no answer) ...
      await o.update(e, { quantity: 21.2 }); // ... so this edit queues behind it
      const f = (await o.save("height", 181, { date: new Date("2026-11-06T07:00:00Z") })).id;
      await o.delete(f);
      return { e, f, entries: await o.entries(), stats: await o.stats() };
    }, ids);
    ids.e = offline.e;
    ids.f = offline.f;
    const shown = offline.entries.map((x) => x.id).sort();
    assert.deepEqual(shown, [ids.a, ids.b, ids.e].sort(), "deleted entries are hidden at once");
    await waitFor("uploads to fail without an answer", () => page.evaluate(() => window.outbox.stats().then((s) => s.failed > 0 && s.lastError && s.lastError.includes("network"))));
    assert.equal((await server.records()).length, 4, "nothing reached the server while it was away");

    // Back again.
    await server.faults({ mode: "healthy" });
    await page.evaluate(() => window.outbox.processNow());
    const events = await drained(page, "ed", 30000);
    const device = await page.evaluate(() => window.outbox.entries());
    const live = (await server.records()).filter((r) => r.userId === "ed");
    const all = (await allRecords(server)).filter((r) => r.userId === "ed");
    assertSameState(device, live, all, [ids.c, ids.d, ids.f]);
    assert.equal(device.find((x) => x.id === ids.a).quantity, 79.1);
    assert.equal(all.find((r) => r.localId === ids.c).deleted, true);
    assert.equal(all.find((r) => r.localId === ids.d).deleted, true);
    assert.equal(all.find((r) => r.localId === ids.d).quantity, 64, "the update before the delete went first");

    // Every event's key was answered exactly once (offline attempts were never answered).
    const answered = (await requestLog(server)).filter((r) => r.key && r.status !== null);
    const perKey = new Map();
    for (const r of answered) perKey.set(r.key, (perKey.get(r.key) || 0) + 1);
    for (const ev of events) assert.equal(perKey.get(ev.id), 1, `event ${ev.id} (${ev.operation} of ${ev.entityId}) answered ${perKey.get(ev.id) || 0} times`);
    assert.equal(perKey.size, events.length, "no answered request without an event");
    const attempts = await server.attempts();
    for (const ev of events) assert.ok(attempts[ev.id] >= 1);
    const ops = events.map((e) => `${e.operation}:${e.entityId === ids.a ? "a" : e.entityId === ids.d ? "d" : "-"}`);
    assert.equal(ops.filter((o) => o === "update:a").length, 2, "both updates of a were queued (a was synced)");
    assert.deepEqual(await page.evaluate(() => window.outbox.stats().then((s) => [s.pending, s.processing, s.failed])), [0, 0, 0]);
  } finally {
    await context.close().catch(() => {});
    await server.stop();
    cleanup(profile, server.dataDir);
  }
});

test("an update written while its create is in flight reaches the server after the create's answer, with the create's id", async () => {
  const server = await startServer();
  const profile = tempDir("edits-inflight");
  const context = await launch(profile);
  try {
    // Long enough that a stalled page still reads the create in flight, and well under this page's
    // request timeout (a timed-out create would be sent again).
    const delayMs = 4000;
    await server.faults({ mode: "slow", delayMs });
    const page = await openOutbox(context, server.url, { ...FAST, requestTimeoutMs: 15000, dbName: "e2e-inflight" });
    const id = await page.evaluate(async () => {
      window.outbox.start("fly");
      return (await window.outbox.saveWeight(70)).id;
    });
    await waitFor("the create to be in flight", async () => (await requestLog(server)).some((r) => r.method === "POST" && r.status === null));
    const written = await page.evaluate(async (id) => {
      const before = (await window.outbox.events({ userId: "fly" }))[0];
      await window.outbox.update(id, { quantity: 71.5 });
      return { at: Date.now(), createStatus: before.status };
    }, id);
    assert.equal(written.createStatus, "processing", "the update was written while the create was in flight");
    const events = await drained(page, "fly");
    const create = events.find((e) => e.operation === "create");
    const update = events.find((e) => e.operation === "update");
    assert.ok(update, "the update queued behind the create (it was not folded into a create already sent)");
    assert.ok(update.createdAt < create.completedAt, "written before the create was acknowledged");

    const reqs = (await requestLog(server)).filter((r) => r.path.startsWith("/api/v1/progress") && r.method !== "GET");
    assert.deepEqual(reqs.map((r) => r.method), ["POST", "PUT"]);
    const [post, put] = reqs;
    const [record] = (await server.records()).filter((r) => r.localId === id);
    assert.equal(put.path, `/api/v1/progress/${record.id}`, "addressed by the create's id");
    assert.equal(post.key, create.id);
    assert.equal(put.key, update.id);
    // The create was held `delayMs` by the server before its answer: the update arrived after it.
    assert.ok(put.at >= post.at + delayMs, `the PUT arrived ${put.at - post.at} ms after the POST, before its answer`);
    assert.equal(post.status, 201);
    assert.equal(put.status, 200);
    assert.equal(record.quantity, 71.5);
    const [entry] = await page.evaluate(() => window.outbox.entries());
    assert.equal(entry.backendId, record.id);
  } finally {
    await context.close().catch(() => {});
    await server.stop();
    cleanup(profile, server.dataDir);
  }
});
