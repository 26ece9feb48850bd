// The dev API server (www/server.mjs) in-process: `node --test tests/server/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http from "node:http";
import { createDevServer } from "../../www/server.mjs";

const DATE = "2026-11-26T07:30:00.000Z";
const weight = (localId, quantity = 70.5, extra = {}) => ({ localId, type: "weight", quantity, unit: "kg", date: DATE, ...extra });

/** A dev server on a free loopback port, with helpers; `dataDir` reused to test restarts. */
async function start(dataDir = mkdtempSync(join(tmpdir(), "outbox-server-")), options = {}) {
  const dev = createDevServer({ dataDir, quiet: true, ...options });
  await new Promise((r) => dev.server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${dev.server.address().port}`;
  const call = async (method, path, { token, key, body, headers = {}, redirect } = {}) => {
    const res = await fetch(base + path, {
      method,
      redirect,
      headers: {
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(key ? { "Idempotency-Key": key } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, headers: res.headers, body: json, text };
  };
  const s = {
    base, dataDir, dev, call,
    login: async (userId) => (await call("POST", "/api/v1/login", { body: { userId } })).body.token,
    post: (token, key, body) => call("POST", "/api/v1/progress", { token, key, body }),
    put: (token, key, id, body) => call("PUT", `/api/v1/progress/${id}`, { token, key, body }),
    del: (token, key, id) => call("DELETE", `/api/v1/progress/${id}`, { token, key }),
    batch: (token, events, headers) => call("POST", "/api/v1/progress/batch", { token, body: events === undefined ? undefined : { events }, headers }),
    faults: (f) => call("PUT", "/api/v1/faults", { body: f }),
    records: async (query = "all=1") => (await call("GET", `/api/v1/progress?${query}`)).body,
    close: () => new Promise((r) => { dev.server.closeAllConnections(); dev.server.close(r); }),
  };
  return s;
}

/** Runs body(server) and always closes the server and removes its data. */
async function withServer(body, options) {
  const s = await start(undefined, options);
  try {
    return await body(s);
  } finally {
    await s.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  }
}

test("every metric's bounds: inside accepted, outside refused with 422 and a reason", () => withServer(async (s) => {
  const token = await s.login("u1");
  const cases = {
    weight: ["kg", [0.001, 70.5, 635], [0, -1, 635.001, "70", null]],
    bodyFat: ["%", [1, 22.5, 75], [0.99, 75.01, 0]],
    height: ["cm", [30, 172.4, 300], [29.9, 300.1]],
    steps: ["count", [0, 8042, 200000], [-1, 200001, 10.5]],
    heartRate: ["bpm", [20, 61, 300], [19, 301, 60.5]],
    mood: ["score", [1, 7, 10], [0, 11, 5.5]],
  };
  let n = 0;
  for (const [type, [unit, good, bad]] of Object.entries(cases)) {
    for (const quantity of good) {
      const r = await s.post(token, `ok-${n++}`, { localId: `l${n}`, type, quantity, unit, date: DATE });
      assert.equal(r.status, 201, `${type} ${quantity} accepted: ${r.text}`);
    }
    for (const quantity of bad) {
      const r = await s.post(token, `bad-${n++}`, { localId: `l${n}`, type, quantity, unit, date: DATE });
      assert.equal(r.status, 422, `${type} ${quantity} refused`);
      assert.match(r.body.error, /quantity/);
    }
  }
  // Infinity (1e400 parses to it), wrong units, unknown metric, bad dates, missing localId.
  const raw = `{"localId":"inf","type":"weight","quantity":1e400,"unit":"kg","date":"${DATE}"}`;
  assert.equal((await s.post(token, "inf", raw)).status, 422);
  for (const [body, pattern] of [
    [{ ...weight("u"), unit: "lb" }, /unit must be "kg"/],
    [{ localId: "u", type: "steps", quantity: 5, unit: "kg", date: DATE }, /unit must be "count"/],
    [{ localId: "u", type: "bodyFat", quantity: 20, unit: "percent", date: DATE }, /unit must be "%"/],
    [{ ...weight("u"), type: "bmi" }, /type must be one of/],
    [{ ...weight("u"), date: "yesterday" }, /date/],
    [{ ...weight("u"), date: 1764142200000 }, /date/],
    [{ ...weight("u"), localId: "" }, /localId/],
    [{ ...weight("u"), userId: 7 }, /userId/],
    [[1, 2], /object/],
  ]) {
    const r = await s.post(token, `x-${n++}`, body);
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.match(r.body.error, pattern);
  }
  assert.equal((await s.records()).length, 18, "only the accepted ones are stored");
}));

test("ownership: the token's user owns what it writes; a foreign userId or record is 403", () => withServer(async (s) => {
  const alice = await s.login("alice");
  const bob = await s.login("bob");
  const denied = await s.post(alice, "k1", weight("l1", 70, { userId: "bob" }));
  assert.equal(denied.status, 403);
  assert.ok(!denied.text.includes(alice), "the token is never echoed");
  const own = await s.post(alice, "k2", weight("l1", 70, { userId: "alice" }));
  assert.equal(own.status, 201);
  const implicit = await s.post(alice, "k3", weight("l2", 71));
  assert.equal(implicit.status, 201, "absent userId = the token's subject");
  const rows = await s.records();
  assert.deepEqual(rows.map((r) => r.userId), ["alice", "alice"]);

  const id = own.body.id;
  assert.equal((await s.put(bob, "k4", id, weight("l1", 72))).status, 403, "bob cannot update alice's record");
  assert.equal((await s.put(bob, "k4b", id, weight("l1", 72, { userId: "alice" }))).status, 403);
  assert.equal((await s.del(bob, "k5", id)).status, 403, "nor delete it");
  assert.equal((await s.put(alice, "k6", id, weight("l1", 72, { userId: "bob" }))).status, 403, "a foreign userId in a PUT body");
  assert.equal((await s.call("GET", `/api/v1/progress/${id}`, { token: bob })).status, 403);
  assert.equal((await s.call("GET", `/api/v1/progress/${id}`, { token: alice })).body.quantity, 70);
  assert.equal((await s.records()).find((r) => r.id === id).quantity, 70, "unchanged");
  // The token's user sees only their own records without ?all=1.
  await s.post(bob, "k7", weight("b1"));
  assert.deepEqual((await s.call("GET", "/api/v1/progress", { token: bob })).body.map((r) => r.localId), ["b1"]);
  assert.equal((await s.records()).length, 3);
  // 401 without or with a bad token, on every write route.
  assert.equal((await s.post(null, "k8", weight("l9"))).status, 401);
  assert.equal((await s.put("forged.token", "k9", id, weight("l1"))).status, 401);
  assert.equal((await s.del(null, "k10", id)).status, 401);
}));

test("PUT and DELETE: happy paths, 404s, fixed localId/type, required headers, GET views", () => withServer(async (s) => {
  const t = await s.login("u1");
  const { body: { id } } = await s.post(t, "c1", weight("l1", 70));
  const up = await s.put(t, "u1", id, { ...weight("l1", 69.5), date: "2026-11-27T08:00:00.000Z" });
  assert.deepEqual([up.status, up.body], [200, { id }]);
  let rec = (await s.call("GET", `/api/v1/progress/${id}`)).body;
  assert.equal(rec.quantity, 69.5);
  assert.equal(rec.date, "2026-11-27T08:00:00.000Z");
  assert.equal(rec.localId, "l1");
  assert.equal((await s.records()).length, 1, "an update changes the record, it adds none");

  assert.equal((await s.put(t, "u2", "srv-999", weight("l1"))).status, 404);
  assert.equal((await s.put(t, "u3", id, weight("other"))).status, 422, "localId cannot change");
  assert.equal((await s.put(t, "u4", id, { localId: "l1", type: "height", quantity: 170, unit: "cm", date: DATE })).status, 422, "type cannot change");
  assert.equal((await s.put(t, "u5", id, { ...weight("l1"), quantity: 0 })).status, 422);
  assert.equal((await s.put(t, null, id, weight("l1"))).status, 400, "Idempotency-Key required");
  assert.equal((await s.call("PUT", `/api/v1/progress/${id}`, { token: t, key: "u6", body: JSON.stringify(weight("l1")), headers: { "Content-Type": "text/plain" } })).status, 415);
  assert.equal((await s.put(t, "u7", id, "{nope")).status, 400);

  assert.equal((await s.del(t, "d0", "srv-999")).status, 404);
  assert.equal((await s.del(t, null, id)).status, 400, "Idempotency-Key required");
  const del = await s.del(t, "d1", id);
  assert.deepEqual([del.status, del.body], [200, { id }]);
  assert.equal((await s.del(t, "d2", id)).status, 404, "already deleted");
  assert.equal((await s.put(t, "u8", id, weight("l1", 75))).status, 404, "deleted records cannot be updated");
  assert.deepEqual(await s.records(), [], "deleted records are not listed");
  assert.equal((await s.call("GET", `/api/v1/progress/${id}`)).status, 404);
  rec = (await s.call("GET", `/api/v1/progress/${id}?deleted=1`)).body;
  assert.equal(rec.deleted, true);
  const withDeleted = await s.records("all=1&deleted=1");
  assert.equal(withDeleted.length, 1);
  assert.equal(withDeleted[0].deleted, true);
  assert.equal(withDeleted[0].quantity, 69.5, "latest values kept");
}));

test("idempotency: POST, PUT and DELETE replay their first answer; a reused key with another body is 422", () => withServer(async (s) => {
  const t = await s.login("u1");
  const first = await s.post(t, "c1", weight("l1", 70));
  const again = await s.post(t, "c1", weight("l1", 70));
  assert.deepEqual([again.status, again.body], [201, first.body]);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.equal(first.headers.get("idempotent-replayed"), null);
  // Key order and whitespace do not matter; the meaning does.
  const reordered = `{ "date": "${DATE}", "unit": "kg", "quantity": 70, "type": "weight", "localId": "l1" }`;
  assert.equal((await s.post(t, "c1", reordered)).status, 201);
  assert.equal((await s.post(t, "c1", weight("l1", 71))).status, 422);
  assert.equal((await s.records()).length, 1);

  const id = first.body.id;
  const put = await s.put(t, "p1", id, weight("l1", 72));
  const putAgain = await s.put(t, "p1", id, weight("l1", 72));
  assert.deepEqual([putAgain.status, putAgain.body, putAgain.headers.get("idempotent-replayed")], [200, put.body, "true"]);
  assert.equal((await s.put(t, "p1", id, weight("l1", 73))).status, 422, "same key, different body");
  assert.equal((await s.put(t, "c1", id, weight("l1", 70))).status, 422, "a create's key reused for an update");

  const del = await s.del(t, "d1", id);
  const delAgain = await s.del(t, "d1", id);
  assert.deepEqual([delAgain.status, delAgain.body, delAgain.headers.get("idempotent-replayed")], [200, del.body, "true"], "a replayed delete is not a 404");
  assert.equal((await s.put(t, "p1", id, weight("l1", 72))).status, 200, "a replayed update of a since-deleted record still gets its first answer");
  assert.equal((await s.del(t, "p1", id)).status, 422, "an update's key reused for a delete");
  // A refused request stores nothing under its key: it can be retried.
  assert.equal((await s.post(t, "c2", weight("l2", 0))).status, 422);
  assert.equal((await s.post(t, "c2", weight("l2", 80))).status, 201);
  // Another user cannot claim a key's answer.
  const other = await s.login("u2");
  assert.equal((await s.post(other, "c2", weight("l2", 80))).status, 422);
  const attempts = (await s.call("GET", "/api/v1/debug/attempts")).body;
  assert.equal(attempts.c1, 5, "POSTs and the PUT under c1");
  assert.equal(attempts.p1, 5);
  assert.equal(attempts.d1, 2);
}));

test("a restart rebuilds state and the key map from the log; a torn last line is cut off", async () => {
  let s = await start();
  const dataDir = s.dataDir;
  try {
    const t = await s.login("u1");
    const a = (await s.post(t, "c1", weight("l1", 70))).body.id;
    const b = (await s.post(t, "c2", weight("l2", 80))).body.id;
    const c = (await s.batch(t, [{ idempotencyKey: "c3", operation: "create", ...weight("l3", 90) }])).body.results[0].id;
    await s.put(t, "p1", a, weight("l1", 71));
    await s.del(t, "d1", b);
    await s.close();
    // A crash in the middle of a write: half a line at the end.
    appendFileSync(join(dataDir, "records.jsonl"), '{"op":"create","key":"torn","h":"x","status":201,"resp');
    s = await start(dataDir);
    const rows = await s.records("all=1&deleted=1");
    assert.deepEqual(rows.map((r) => [r.id, r.quantity, !!r.deleted]), [[a, 71, false], [b, 80, true], [c, 90, false]]);
    // Replays survive, including a batch item's key replayed by a single request and vice versa.
    assert.deepEqual((await s.post(t, "c1", weight("l1", 70))).body, { id: a });
    assert.equal((await s.post(t, "c1", weight("l1", 70))).headers.get("idempotent-replayed"), "true");
    assert.deepEqual((await s.post(t, "c3", weight("l3", 90))).body, { id: c });
    assert.deepEqual((await s.batch(t, [{ idempotencyKey: "c2", operation: "create", ...weight("l2", 80) }])).body.results, [{ status: 201, id: b }]);
    assert.equal((await s.put(t, "p1", a, weight("l1", 71))).status, 200);
    assert.equal((await s.put(t, "p1", a, weight("l1", 99))).status, 422);
    assert.deepEqual([(await s.del(t, "d1", b)).status, (await s.del(t, "d2", b)).status], [200, 404]);
    // New ids continue after the old ones; the file takes new lines after the cut.
    const d = (await s.post(t, "c4", weight("l4"))).body.id;
    assert.equal(d, "srv-4");
    await s.close();
    s = await start(dataDir);
    assert.equal((await s.records()).length, 3);
    const lines = readFileSync(join(dataDir, "records.jsonl"), "utf8").trim().split("\n");
    assert.equal(lines.length, 6);
    for (const line of lines) JSON.parse(line);
  } finally {
    await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a log written by the previous server version (no op field) still loads and replays", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "outbox-server-"));
  const record = { id: "srv-1", localId: "old", userId: "u1", type: "weight", quantity: 70, unit: "kg", date: DATE, receivedAt: DATE, idempotencyKey: "legacy" };
  appendFileSync(join(dataDir, "records.jsonl"), JSON.stringify({ key: "legacy", bodyHash: "abc", status: 201, response: { id: "srv-1" }, record }) + "\n");
  const s = await start(dataDir);
  try {
    const t = await s.login("u1");
    assert.deepEqual((await s.records()).map((r) => r.id), ["srv-1"]);
    assert.deepEqual((await s.post(t, "legacy", weight("old", 70))).body, { id: "srv-1" });
    assert.equal((await s.post(t, "new", weight("new"))).body.id, "srv-2");
  } finally {
    await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("batch: mixed creates, updates, deletes, invalid and malformed items, repeated keys", () => withServer(async (s) => {
  const t = await s.login("u1");
  const other = await s.login("u2");
  const foreign = (await s.post(other, "f1", weight("f1"))).body.id;
  const existing = (await s.post(t, "e1", weight("e1", 60))).body.id;
  const doomed = (await s.post(t, "e2", weight("e2", 61))).body.id;
  const r = await s.batch(t, [
    { idempotencyKey: "b1", operation: "create", ...weight("n1", 70) },
    { idempotencyKey: "b2", operation: "create", localId: "n2", userId: "u1", type: "steps", quantity: 8042, unit: "count", date: DATE },
    { idempotencyKey: "b3", operation: "update", backendId: existing, ...weight("e1", 62) },
    { idempotencyKey: "b4", operation: "delete", backendId: doomed },
    { idempotencyKey: "b5", operation: "delete", backendId: "srv-404" },
    { idempotencyKey: "b6", operation: "create", ...weight("n3", 900) },
    { idempotencyKey: "b1", operation: "create", ...weight("n1", 70) },
    { idempotencyKey: "b1", operation: "create", ...weight("n1", 71) },
    { idempotencyKey: "e1", operation: "create", ...weight("e1", 60) },
    { idempotencyKey: "b7", operation: "create", ...weight("n4", 70, { userId: "u2" }) },
    { idempotencyKey: "b8", operation: "update", backendId: foreign, ...weight("f1", 70) },
    { idempotencyKey: "b9", operation: "update", ...weight("e1", 63) },
    { operation: "create", ...weight("n5") },
    { idempotencyKey: "b10", operation: "upsert", ...weight("n6") },
    "not an object",
    null,
    { idempotencyKey: "b11", operation: "update", backendId: existing, ...weight("other-local", 63) },
  ]);
  assert.equal(r.status, 200);
  const res = r.body.results;
  assert.equal(res.length, 17, "one result per event");
  assert.deepEqual(res.slice(0, 5), [
    { status: 201, id: "srv-4" },
    { status: 201, id: "srv-5" },
    { status: 200, id: existing },
    { status: 200, id: doomed },
    { status: 404, error: "no record srv-404" },
  ]);
  assert.equal(res[5].status, 422);
  assert.match(res[5].error, /quantity/);
  assert.deepEqual(res[6], { status: 201, id: "srv-4" }, "a repeated key in the same batch replays");
  assert.equal(res[7].status, 422, "same key, different item");
  assert.match(res[7].error, /reused/);
  assert.deepEqual(res[8], { status: 201, id: existing }, "a single POST's key replayed by a batch item");
  assert.equal(res[9].status, 403);
  assert.equal(res[10].status, 403);
  assert.equal(res[11].status, 422, "update without backendId");
  assert.deepEqual(res.slice(12, 16).map((x) => x.status), [400, 400, 400, 400]);
  for (const x of res) if (x.status >= 400) assert.equal(typeof x.error, "string");
  assert.equal(res[16].status, 422);
  const mine = await s.call("GET", "/api/v1/progress", { token: t });
  assert.deepEqual(mine.body.map((x) => [x.localId, x.quantity]), [["e1", 62], ["n1", 70], ["n2", 8042]]);
  const attempts = (await s.call("GET", "/api/v1/debug/attempts")).body;
  assert.equal(attempts.b1, 3, "every batch item is counted per key");
  assert.equal(attempts.e1, 2);
  // The first five again: stored items replay their first answers, nothing new is stored.
  const again = await s.batch(t, [
    { idempotencyKey: "b1", operation: "create", ...weight("n1", 70) },
    { idempotencyKey: "b2", operation: "create", localId: "n2", type: "steps", quantity: 8042, unit: "count", date: DATE },
    { idempotencyKey: "b3", operation: "update", backendId: existing, ...weight("e1", 62) },
    { idempotencyKey: "b4", operation: "delete", backendId: doomed },
    { idempotencyKey: "b5", operation: "delete", backendId: "srv-404" },
  ]);
  assert.deepEqual(again.body.results, res.slice(0, 5));
  assert.equal((await s.records()).length, 4);
}));

test("batch: whole-request errors (401, 415, 400, 413) and the faults acting on the whole batch", () => withServer(async (s) => {
  const t = await s.login("u1");
  const ev = (i) => ({ idempotencyKey: `k${i}`, operation: "create", ...weight(`l${i}`) });
  assert.equal((await s.batch(null, [ev(1)])).status, 401);
  assert.equal((await s.batch("forged.token", [ev(1)])).status, 401);
  assert.equal((await s.batch(t, [ev(1)], { "Content-Type": "text/plain" })).status, 415);
  assert.equal((await s.call("POST", "/api/v1/progress/batch", { token: t, body: "{not json" })).status, 400);
  assert.equal((await s.call("POST", "/api/v1/progress/batch", { token: t, body: { items: [] } })).status, 400);
  assert.equal((await s.call("POST", "/api/v1/progress/batch", { token: t, body: [ev(1)] })).status, 400);
  assert.equal((await s.batch(t, Array.from({ length: 1001 }, (_, i) => ev(i)))).status, 413);
  const big = await s.call("POST", "/api/v1/progress/batch", { token: t, body: JSON.stringify({ events: [ev(1)], pad: "x".repeat(4 * 1024 * 1024) }) });
  assert.equal(big.status, 413);
  assert.deepEqual((await s.batch(t, [])).body, { results: [] });
  assert.equal((await s.records()).length, 0);

  await s.faults({ mode: "status", status: 503 });
  assert.equal((await s.batch(t, [ev(1)])).status, 503);
  await s.faults({ mode: "ratelimit", retryAfter: 9 });
  const limited = await s.batch(t, [ev(1)]);
  assert.deepEqual([limited.status, limited.headers.get("retry-after")], [429, "9"]);
  const { body: { id } } = await (async () => { await s.faults({ mode: "healthy" }); return s.post(t, "c", weight("c")); })();
  await s.faults({ mode: "status", status: 500 });
  assert.equal((await s.put(t, "p", id, weight("c", 71))).status, 500, "faults apply to PUT");
  assert.equal((await s.del(t, "d", id)).status, 500, "and to DELETE");
  await s.faults({ mode: "offline" });
  await assert.rejects(s.batch(t, [ev(1)]), "offline: no answer");
  await assert.rejects(s.del(t, "d", id));
  await s.faults({ mode: "slow", delayMs: 150 });
  const t0 = Date.now();
  assert.equal((await s.batch(t, [ev(1)])).status, 200);
  assert.ok(Date.now() - t0 >= 140, "slow mode delays a batch");
  await s.faults({ mode: "healthy", latencyMs: 100 });
  const t1 = Date.now();
  assert.equal((await s.del(t, "d", id)).status, 200);
  assert.ok(Date.now() - t1 >= 90, "latencyMs delays every write");
  assert.equal((await s.call("GET", "/api/v1/debug/attempts")).body.k1, 7, "batch items are counted even when a fault answers");
}));

test("itemFaults by index and by localId, with retryAfter and times; faulted items are not stored", () => withServer(async (s) => {
  const t = await s.login("u1");
  const set = await s.faults({ itemFaults: [
    { index: 3, status: 422, error: "item three is refused" },
    { index: 5, status: 503, retryAfter: 5 },
    { localId: "l7", status: 429, retryAfter: 2, times: 1 },
  ] });
  assert.equal(set.status, 200);
  const events = Array.from({ length: 8 }, (_, i) => ({ idempotencyKey: `k${i}`, operation: "create", ...weight(`l${i}`) }));
  let res = (await s.batch(t, events)).body.results;
  assert.deepEqual(res[3], { status: 422, error: "item three is refused" });
  assert.deepEqual(res[5], { status: 503, retryAfter: 5, error: "item fault: status 503" });
  assert.deepEqual(res[7], { status: 429, retryAfter: 2, error: "item fault: status 429" });
  assert.deepEqual(res.map((x) => x.status), [201, 201, 201, 422, 201, 503, 201, 429]);
  assert.deepEqual((await s.records()).map((r) => r.localId).sort(), ["l0", "l1", "l2", "l4", "l6"]);
  assert.equal((await s.call("GET", "/api/v1/faults")).body.itemFaults[2].times, 0, "times counts down");
  // The retry: the localId fault is used up, the index faults remain (index = position, not item).
  res = (await s.batch(t, [events[7], events[5], events[3], events[0]])).body.results;
  assert.deepEqual(res.map((x) => x.status), [201, 201, 201, 422]);
  await s.faults({ itemFaults: [] });
  res = (await s.batch(t, events)).body.results;
  assert.ok(res.every((x) => x.status === 201));
  assert.equal((await s.records()).length, 8, "every localId stored once");
  // Validation of the entries.
  for (const bad of [
    { itemFaults: {} },
    { itemFaults: [{ index: -1, status: 500 }] },
    { itemFaults: [{ index: 1 }] },
    { itemFaults: [{ index: 1, status: 700 }] },
    { itemFaults: [{ localId: "", status: 500 }] },
    { itemFaults: [{ status: 503, retryAfter: "soon" }] },
    { itemFaults: [{ status: 503, times: 1.5 }] },
    { itemFaults: [{ status: 503, idx: 1 }] },
  ]) {
    const r = await s.faults(bad);
    assert.equal(r.status, 422, JSON.stringify(bad));
    assert.match(r.body.error, /itemFaults/);
  }
}));

test("truncate: the request is stored, the answer is cut mid-body; short: one result missing", () => withServer(async (s) => {
  const t = await s.login("u1");
  await s.faults({ mode: "truncate" });
  const events = [0, 1, 2].map((i) => ({ idempotencyKey: `k${i}`, operation: "create", ...weight(`l${i}`) }));
  await assert.rejects(s.batch(t, events), "reading a cut answer fails");
  await assert.rejects(s.post(t, "single", weight("single")));
  assert.equal((await s.records()).length, 4, "stored before the answer was cut");
  await s.faults({ mode: "short" });
  const short = await s.batch(t, [...events, { idempotencyKey: "k3", operation: "create", ...weight("l3") }]);
  assert.equal(short.status, 200);
  assert.deepEqual(short.body.results, [{ status: 201, id: "srv-1" }, { status: 201, id: "srv-2" }, { status: 201, id: "srv-3" }], "replays, and the last result dropped");
  assert.equal((await s.post(t, "single2", weight("single2"))).status, 201, "short acts on batches only");
  await s.faults({ mode: "healthy" });
  assert.deepEqual((await s.batch(t, [events[0], { idempotencyKey: "k3", operation: "create", ...weight("l3") }])).body.results, [{ status: 201, id: "srv-1" }, { status: 201, id: "srv-5" }]);
  assert.equal((await s.records()).length, 6, "nothing duplicated by the retries");
}));

test("redirect: every write gets the status and Location, nothing is stored, /elsewhere counts only direct hits", () => withServer(async (s) => {
  const t = await s.login("u1");
  const { body: { id } } = await s.post(t, "c0", weight("l0"));
  await s.faults({ mode: "redirect" });
  const manual = { redirect: "manual" };
  const post = await s.call("POST", "/api/v1/progress", { token: t, key: "c1", body: weight("l1"), ...manual });
  assert.deepEqual([post.status, post.headers.get("location")], [307, "/api/v1/elsewhere"]);
  const put = await s.call("PUT", `/api/v1/progress/${id}`, { token: t, key: "p1", body: weight("l0", 80), ...manual });
  const del = await s.call("DELETE", `/api/v1/progress/${id}`, { token: t, key: "d1", ...manual });
  const batch = await s.call("POST", "/api/v1/progress/batch", { token: t, body: { events: [{ idempotencyKey: "b1", operation: "create", ...weight("l2") }] }, ...manual });
  assert.deepEqual([put.status, del.status, batch.status], [307, 307, 307]);
  assert.deepEqual((await s.call("GET", "/api/v1/debug/elsewhere")).body, { count: 0 }, "not followed");
  assert.deepEqual((await s.records()).map((r) => [r.localId, r.quantity]), [["l0", 70.5]], "GETs are not redirected; nothing stored");

  await s.faults({ redirectStatus: 308, redirectTo: "/api/v1/elsewhere?from=test" });
  const r308 = await s.call("POST", "/api/v1/progress", { token: t, key: "c1", body: weight("l1"), ...manual });
  assert.deepEqual([r308.status, r308.headers.get("location")], [308, "/api/v1/elsewhere?from=test"]);
  // The test itself goes there: one hit per request it sends (a followed redirect would count too).
  const direct = await s.call("POST", "/api/v1/elsewhere", { body: weight("l1") });
  assert.deepEqual([direct.status, direct.body], [201, { id: "elsewhere-1" }]);
  const followed = await s.call("POST", "/api/v1/progress", { token: t, key: "c1", body: weight("l1") });
  assert.deepEqual([followed.status, followed.body], [201, { id: "elsewhere-2" }], "a client that follows lands there");
  assert.deepEqual((await s.call("GET", "/api/v1/debug/elsewhere")).body, { count: 2 });
  for (const bad of [{ redirectStatus: 300 }, { redirectStatus: "307" }, { redirectTo: "" }, { redirectTo: "ftp://x" }]) {
    assert.equal((await s.faults(bad)).status, 422, JSON.stringify(bad));
  }
}));

test("replay:false processes a repeated key as new: duplicates are stored and visible", () => withServer(async (s) => {
  const t = await s.login("u1");
  await s.faults({ replay: false });
  const a = await s.post(t, "k1", weight("l1"));
  const b = await s.post(t, "k1", weight("l1"));
  assert.deepEqual([a.body.id, b.body.id], ["srv-1", "srv-2"]);
  assert.equal(b.headers.get("idempotent-replayed"), null);
  const item = { idempotencyKey: "k2", operation: "create", ...weight("l2") };
  const res = (await s.batch(t, [item, item])).body.results;
  assert.deepEqual(res, [{ status: 201, id: "srv-3" }, { status: 201, id: "srv-4" }]);
  await s.batch(t, [item]);
  const counts = {};
  for (const r of await s.records()) counts[r.localId] = (counts[r.localId] || 0) + 1;
  assert.deepEqual(counts, { l1: 2, l2: 3 });
  await s.faults({ replay: true });
  assert.deepEqual((await s.post(t, "k1", weight("l1"))).body, { id: "srv-1" }, "back on: the first answer");
  assert.equal((await s.faults({ replay: "no" })).status, 422);
}));

test("maxBatchItems answers a larger batch 413 as a whole", () => withServer(async (s) => {
  const t = await s.login("u1");
  assert.equal((await s.faults({ maxBatchItems: 3 })).body.maxBatchItems, 3);
  const events = Array.from({ length: 4 }, (_, i) => ({ idempotencyKey: `k${i}`, operation: "create", ...weight(`l${i}`) }));
  const r = await s.batch(t, events);
  assert.equal(r.status, 413);
  assert.match(r.body.error, /3/);
  assert.equal((await s.records()).length, 0);
  assert.equal((await s.batch(t, events.slice(0, 3))).status, 200);
  await s.faults({ maxBatchItems: null });
  assert.deepEqual((await s.batch(t, events)).body.results.map((x) => x.status), [201, 201, 201, 201]);
  for (const bad of [0, -1, 2.5, "3"]) assert.equal((await s.faults({ maxBatchItems: bad })).status, 422);
}));

test("fault switch validation: every field checked, unknown fields refused, settings kept", () => withServer(async (s) => {
  for (const bad of [
    { mode: "nonsense" }, { failureRate: 2 }, { delayMs: -1 }, { delayMs: 1.5 }, { status: 200 }, { retryAfter: 4000 },
    { latencyMs: -5 }, { replay: 1 }, { maxBatchItems: 0 }, { itemFaults: null }, { colour: "red" },
  ]) {
    const r = await s.faults(bad);
    assert.equal(r.status, 422, JSON.stringify(bad));
    assert.equal(typeof r.body.error, "string");
  }
  assert.equal((await s.call("PUT", "/api/v1/faults", { body: "[1]" })).status, 422);
  assert.equal((await s.call("PUT", "/api/v1/faults", { body: "{oops" })).status, 400);
  const f = (await s.call("GET", "/api/v1/faults")).body;
  assert.deepEqual(f, { mode: "healthy", failureRate: 0.5, delayMs: 2000, status: 500, retryAfter: 5, latencyMs: 0, replay: true, redirectStatus: 307, redirectTo: "/api/v1/elsewhere", maxBatchItems: null, itemFaults: [] });
  for (const mode of ["offline", "flaky", "slow", "status", "ratelimit", "redirect", "truncate", "short", "healthy"]) {
    assert.equal((await s.faults({ mode })).body.mode, mode);
  }
}));

test("debug/requests lists the last requests with their keys and statuses; DELETE clears it", () => withServer(async (s) => {
  const t = await s.login("u1");
  await s.call("DELETE", "/api/v1/debug/requests");
  await s.post(t, "k1", weight("l1"));
  await s.post(t, "k2", weight("l2", 0));
  await s.batch(t, [{ idempotencyKey: "b1", operation: "create", ...weight("l3") }, { idempotencyKey: "b2", operation: "delete", backendId: "srv-1" }]);
  await s.faults({ mode: "offline" });
  await assert.rejects(s.post(t, "k3", weight("l4")));
  await s.faults({ mode: "healthy" });
  await s.call("GET", "/api/v1/debug/attempts");
  const log = (await s.call("GET", "/api/v1/debug/requests")).body;
  const writes = log.filter((r) => r.path.startsWith("/api/v1/progress"));
  assert.deepEqual(writes.map(({ method, path, key, keys, status }) => ({ method, path, key, keys, status })), [
    { method: "POST", path: "/api/v1/progress", key: "k1", keys: null, status: 201 },
    { method: "POST", path: "/api/v1/progress", key: "k2", keys: null, status: 422 },
    { method: "POST", path: "/api/v1/progress/batch", key: null, keys: ["b1", "b2"], status: 200 },
    { method: "POST", path: "/api/v1/progress", key: "k3", keys: null, status: null },
  ]);
  assert.ok(writes.every((r) => typeof r.at === "number"));
  assert.ok(log.some((r) => r.path === "/api/v1/faults"), "other API calls are listed too");
  assert.ok(!log.some((r) => r.path.startsWith("/api/v1/debug/")), "debug calls are not");
  assert.ok(!JSON.stringify(log).includes(t), "no token in the log");
  await s.call("DELETE", "/api/v1/debug/requests");
  assert.deepEqual((await s.call("GET", "/api/v1/debug/requests")).body, []);
  // The ring keeps the last 10,000.
  for (let i = 0; i < 101; i++) await s.batch(t, Array.from({ length: 100 }, (_, j) => ({ idempotencyKey: `r${i}-${j}`, operation: "create", ...weight(`r${i}-${j}`) })));
  const many = (await s.call("GET", "/api/v1/debug/requests")).body;
  assert.equal(many.length, 101);
  assert.equal(many[100].keys[0], "r100-0", "oldest first");
}));

test("debug/requests is a ring of 10,000", () => withServer(async (s) => {
  // node:http with keep-alive: several times cheaper per request than fetch.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const { port } = new URL(s.base);
  const get = (path) => new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, agent }, (res) => res.resume().on("end", resolve));
    req.on("error", reject);
    req.end();
  });
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => { while (next < 10005) await get(`/api/v1/nothing?n=${next++}`); }));
  agent.destroy();
  const log = (await s.call("GET", "/api/v1/debug/requests")).body;
  assert.equal(log.length, 10000);
  assert.ok(log.every((r) => r.path === "/api/v1/nothing" && r.status === 404 && r.method === "GET"));
  assert.ok(log.every((r, i) => i === 0 || log[i - 1].at <= r.at), "oldest first");
}));

test("throughput: 10,000 items as 100 batches of 100 (printed, not asserted)", () => withServer(async (s) => {
  const t = await s.login("bench");
  const batches = Array.from({ length: 100 }, (_, b) => JSON.stringify({
    events: Array.from({ length: 100 }, (_, i) => ({ idempotencyKey: `t-${b}-${i}`, operation: "create", localId: `t-${b}-${i}`, userId: "bench", type: "weight", quantity: 70 + i / 100, unit: "kg", date: new Date().toISOString() })),
  }));
  const headers = { "Content-Type": "application/json", Authorization: `Bearer ${t}` };
  const t0 = performance.now();
  for (const body of batches) {
    const res = await fetch(`${s.base}/api/v1/progress/batch`, { method: "POST", headers, body });
    const { results } = await res.json();
    if (results.length !== 100 || results[99].status !== 201) throw new Error("batch failed");
  }
  const ms = performance.now() - t0;
  console.log(`  batch throughput: 10,000 items in ${ms.toFixed(0)} ms = ${Math.round(10000 / (ms / 1000))} items/s (sequential batches of 100)`);
  assert.equal((await s.records()).length, 10000);
}));

/** Sends `target` exactly as written (fetch would normalise it) and returns the status line. */
function rawGet(base, target) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method: "GET", path: target, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end();
  });
}

test("hostile request targets get a 4xx and the server lives on: bad percent-encoding, an unparsable URL, a sibling folder", () => withServer(async (s) => {
  // Each of these threw inside the request handler and ended the process (npm start and every e2e test).
  assert.equal(await rawGet(s.base, "/%E0"), 400);
  assert.equal(await rawGet(s.base, "/pkg/%E0%A4"), 400);
  assert.equal(await rawGet(s.base, "http://[x/"), 400);
  // A prefix check without a separator served files of pkg-template/ next to pkg/.
  assert.equal(await rawGet(s.base, "/pkg/..%2fpkg-template%2findex.js"), 404);
  assert.equal(await rawGet(s.base, "/..%2fpackage.json"), 404);
  assert.equal(await rawGet(s.base, "/index.html%00"), 404);
  // Still serving.
  assert.equal(await rawGet(s.base, "/index.html"), 200);
  assert.equal((await s.call("GET", "/api/v1/progress?all=1")).status, 200);
}));

test("debug/attempts remembers only the latest keys: requests without a valid token cannot grow it for good", () => withServer(async (s) => {
  for (const key of ["a", "b", "c", "d"]) assert.equal((await s.post("not-a-token", key, weight(key))).status, 401);
  await s.post("not-a-token", "c", weight("c"));
  assert.deepEqual((await s.call("GET", "/api/v1/debug/attempts")).body, { b: 1, c: 2, d: 1 });
}, { attemptKeys: 3 }));

