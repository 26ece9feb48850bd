// The in-page half of `npm run bench`: every contender runs in this one page, interleaved, so
// the machine's noise hits all of them alike. bench/run.mjs drives it and writes the results.
// Every outbox here is opened with `log: "off"`: the harness adds no logging to what it measures.
import init, { Outbox } from "/pkg/progress_outbox.js";
import { Queue } from "workbox-background-sync/Queue.js"; // index.js re-exports without file extensions

await init();
const rand = () => Math.random().toString(36).slice(2, 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const total = samples.reduce((a, b) => a + b, 0);
  return { n: s.length, p50: at(0.5), p95: at(0.95), mean: total / s.length };
}

async function token(userId) {
  const res = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId, ttlMs: 3_600_000 }) });
  return (await res.json()).token;
}

function idbOpen(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Deletes a database and waits for it (at most 5 s), so the deletion does not run during the next measurement. */
function drop(name) {
  return new Promise((resolve) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = r.onerror = () => resolve();
    setTimeout(resolve, 5000);
  });
}

const done = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = tx.onabort = () => reject(tx.error);
});

// ---------- records shaped exactly like src/store/records.rs writes them (same fields, same order) ----------

/** An `EntryRecord` (schema v4) of a weight that was never uploaded. */
function entryRecord(id, userId, quantity, date, now) {
  return { id, userId, type: "weight", quantity, unit: "kg", date, backendId: null, createdAt: now, updatedAt: now, rev: 1 };
}

/**
 * An `EventRecord` (schema v4): the create of `entry`, pending (claimable: `sk` 0, `rdy` -priority)
 * or completed after one request (`sk` 2, `done` = completedAt).
 */
function eventRecord(id, entry, createdAt, completedAt = null) {
  const completed = completedAt !== null;
  return {
    id, eventType: "progressEntry", operation: "create", entityId: entry.id, userId: entry.userId, status: completed ? "completed" : "pending",
    metadata: { type: "weight", quantity: entry.quantity, unit: "kg", date: entry.date },
    isNewRecord: true, attemptCount: 0, requestCount: completed ? 1 : 0, maxAttempts: 5, priority: 0, createdAt,
    lastAttemptAt: completed ? completedAt - 20 : null, nextAttemptAt: null, completedAt, errorMessage: null,
    seq: 1, waiting: false, blocks: false, claims: completed ? 1 : 0, claimedBy: null, tries: completed ? 1 : 0, waitMs: null, refused: false, maybeStored: false,
    sk: completed ? 2 : 0, rdy: completed ? null : -0, due: null, done: completed ? completedAt : null,
  };
}

/** The hand-written baseline: the same two records, into the same stores and indexes, same durability. */
function jsSave(db, i) {
  const tx = db.transaction(["entries", "events"], "readwrite", { durability: "strict" });
  const now = Date.now();
  const entry = entryRecord(crypto.randomUUID(), "bench", 70 + (i % 100) / 10, now, now);
  tx.objectStore("entries").add(entry);
  tx.objectStore("events").add(eventRecord(crypto.randomUUID(), entry, now));
  return done(tx);
}

/** Stores, key paths and indexes of a database (to show the baseline's is exactly ours). */
function schemaOf(db) {
  const names = [...db.objectStoreNames].sort();
  const tx = db.transaction(names, "readonly");
  const schema = { version: db.version, stores: {} };
  for (const name of names) {
    const s = tx.objectStore(name);
    const indexes = {};
    for (const i of [...s.indexNames].sort()) {
      const ix = s.index(i);
      indexes[i] = { keyPath: ix.keyPath, unique: ix.unique, multiEntry: ix.multiEntry };
    }
    schema.stores[name] = { keyPath: s.keyPath, autoIncrement: s.autoIncrement, indexes };
  }
  return schema;
}

/** `{field: type}` of a record, nested objects included, in field order. */
function shapeOf(v) {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shapeOf(x)]));
}

async function firstRecord(db, store) {
  const tx = db.transaction([store], "readonly");
  const req = tx.objectStore(store).getAll(null, 1);
  await done(tx);
  return req.result[0];
}

/** The baseline is fair only if it writes what we write, where we write it: checked, never assumed. */
async function fairness(ours, baseline) {
  const a = schemaOf(ours), b = schemaOf(baseline);
  const schemaEqual = JSON.stringify(a) === JSON.stringify(b);
  const shapes = {};
  for (const store of ["entries", "events"]) {
    const x = shapeOf(await firstRecord(ours, store)), y = shapeOf(await firstRecord(baseline, store));
    shapes[store] = { equal: JSON.stringify(x) === JSON.stringify(y), ours: x, baseline: y };
  }
  const ok = schemaEqual && shapes.entries.equal && shapes.events.equal;
  if (!ok) throw new Error(`save baseline is not shaped like our records: ${JSON.stringify({ schemaEqual, a, b, shapes })}`);
  return { schemaEqual, recordShapesEqual: true, schema: a, entryFields: Object.keys(shapes.entries.ours).length, eventFields: Object.keys(shapes.events.ours).length };
}

/** Save cost: saveWeight vs the JS baseline vs workbox Queue.pushRequest, interleaved in rounds. */
export async function saveCost({ n = 1000, concurrency = 1, rounds = 10 } = {}) {
  const tag = rand();
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName: `bench-save-${tag}`, log: "off" });
  // The baseline database gets exactly our schema (stores and indexes): created by the library itself.
  const shape = await Outbox.open({ endpoint: "/x", dbName: `bench-js-${tag}`, log: "off" });
  shape.close();
  const jsDb = await idbOpen(`bench-js-${tag}`);
  const queue = new Queue(`bench-${tag}`);
  const contenders = {
    saveWeight: (i) => outbox.saveWeight(70 + (i % 100) / 10, { userId: "bench" }),
    jsBaseline: (i) => jsSave(jsDb, i),
    workbox: (i) => queue.pushRequest({
      request: new Request("/api/v1/progress", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ localId: crypto.randomUUID(), type: "weight", quantity: 70 + (i % 100) / 10, unit: "kg", date: new Date().toISOString() }),
      }),
    }),
  };
  const names = Object.keys(contenders);
  const samples = Object.fromEntries(names.map((k) => [k, []]));
  const elapsed = Object.fromEntries(names.map((k) => [k, 0]));
  const perRound = Math.ceil(n / rounds);
  // Warm-up (JIT, first transactions), not measured.
  for (const k of names) for (let i = 0; i < 20; i++) await contenders[k](i);
  for (let r = 0; r < rounds; r++) {
    const order = names.slice(r % names.length).concat(names.slice(0, r % names.length));
    for (const k of order) {
      const t0 = performance.now();
      for (let i = 0; i < perRound; i += concurrency) {
        const batch = [];
        for (let j = 0; j < concurrency && i + j < perRound; j++) {
          const start = performance.now();
          batch.push(contenders[k](r * perRound + i + j).then(() => samples[k].push(performance.now() - start)));
        }
        await Promise.all(batch);
      }
      elapsed[k] += performance.now() - t0;
    }
  }
  outbox.close();
  const ours = await idbOpen(`bench-save-${tag}`);
  const fair = await fairness(ours, jsDb);
  ours.close();
  jsDb.close();
  const out = { fairness: fair };
  for (const k of names) out[k] = { ...summary(samples[k]), opsPerSec: (samples[k].length / elapsed[k]) * 1000 };
  return out;
}

/** The network ceiling: the same POSTs from a bare fetch loop, `inFlight` at a time, nothing stored. */
export async function rawFetch({ n = 1000, inFlight = 3 } = {}) {
  const user = `raw-${rand()}`;
  const tok = await token(user);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) {
      const i = next++;
      const res = await fetch("/api/v1/progress", {
        method: "POST", cache: "no-store",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${tok}`, "Idempotency-Key": crypto.randomUUID() },
        body: JSON.stringify({ localId: crypto.randomUUID(), type: "weight", quantity: 60 + (i % 400) / 10, unit: "kg", date: new Date().toISOString() }),
      });
      if (res.status !== 201) throw new Error(`rawFetch: ${res.status} ${await res.text()}`);
      await res.json();
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { n, inFlight, seconds, requestsPerSec: n / seconds, eventsPerSec: n / seconds };
}

/** The batch endpoint's ceiling from this page: bare POSTs of `size` events each, `inFlight` at a time. */
export async function rawBatch({ n = 10000, size = 100, inFlight = 3 } = {}) {
  const user = `rawbatch-${rand()}`;
  const tok = await token(user);
  const date = new Date().toISOString();
  let next = 0;
  let requests = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + size);
      const events = [];
      for (let i = from; i < next; i++) {
        events.push({ idempotencyKey: crypto.randomUUID(), operation: "create", localId: crypto.randomUUID(), userId: user, type: "weight", quantity: 60 + (i % 400) / 10, unit: "kg", date });
      }
      const res = await fetch("/api/v1/progress/batch", {
        method: "POST", cache: "no-store",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${tok}` },
        body: JSON.stringify({ events }),
      });
      const { results } = await res.json();
      if (res.status !== 200 || results.length !== events.length || results.some((r) => r.status !== 201)) throw new Error(`rawBatch: ${res.status}`);
      requests++;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { n, size, inFlight, requests, seconds, eventsPerSec: n / seconds };
}

/**
 * A backlog to drain: `n` pending events (with their entries) of a new user, written in one
 * transaction into a database the library created, records shaped exactly like the ones
 * `saveWeight` writes (checked by `saveCost`), and an outbox opened on it (not started). Every
 * drain contender starts from the same kind of database, and the bench does not spend minutes on
 * 10,000 saves (the save cost is measured on its own).
 */
export async function prepareDrain({ n, maxConcurrent = 3, options = {}, subscribe = false }) {
  const user = `drain-${rand()}`;
  const { db, dbName } = await pendingDb(user, n);
  db.close();
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName, token: await token(user), maxConcurrent, log: "off", ...options });
  const s = await outbox.stats(user);
  if (s.pending !== n) throw new Error(`prepareDrain: ${s.pending} pending of ${n}`);
  // `subscribe`: as an app showing the counts would (the library then recomputes stats on changes).
  const heard = { calls: 0 };
  if (subscribe) outbox.subscribe(() => heard.calls++);
  return { outbox, user, dbName, n, maxConcurrent, heard };
}

/** The `completed` counter of `user`'s stats record, read by the harness's own connection. */
async function completedOf(db, user) {
  const tx = db.transaction(["meta"], "readonly");
  const m = await req(tx.objectStore("meta").get(`user:${user}`));
  return m ? m.completed : 0;
}

/**
 * Drains a prepared backlog and returns events per second, from `start()` to the moment all `n`
 * are recorded completed. The harness watches the user's stats record (one `get` on the small
 * `meta` store, from its own connection) every 200 ms, and every 10 ms once 90% are done, rather
 * than calling `stats()`: that counts the pending events through an index, 16 ms with 1,000
 * pending and 87 ms with 10,000 (measured), in a transaction the drain's writes wait for.
 */
export async function runDrain({ outbox, user, dbName, n, maxConcurrent, heard }) {
  const db = await idbOpen(dbName);
  await sleep(100);
  const t0 = performance.now();
  outbox.start(user);
  let seconds;
  for (let completed = 0; ; ) {
    await sleep(completed >= 0.9 * n ? 10 : 200);
    completed = await completedOf(db, user);
    if (completed >= n) {
      seconds = (performance.now() - t0) / 1000;
      break;
    }
  }
  db.close();
  const s = await outbox.stats();
  outbox.close();
  if (s.completed !== n || s.gaveUp > 0 || s.failed > 0 || s.pending > 0) throw new Error(`drain: ${JSON.stringify(s)}`);
  await drop(dbName);
  return { user, n, maxConcurrent, seconds, eventsPerSec: n / seconds, batchSize: s.batchEvents ?? null, subscriberCalls: heard.calls };
}

async function drainRun({ n, maxConcurrent, options = {}, subscribe = false }) {
  return runDrain(await prepareDrain({ n, maxConcurrent, options, subscribe }));
}

/** Drain, one request per event: a backlog of `n` events uploaded with `maxConcurrent` in flight. */
export async function drain({ n = 1000, maxConcurrent = 3 } = {}) {
  const { batchSize, user, ...r } = await drainRun({ n, maxConcurrent });
  return r;
}

/**
 * Drain through `batchEndpoint`: what the outbox sent (requests and items per request, from the
 * dev API's request log, cleared first) and the adaptive batch size it reached.
 */
export async function drainBatch({ n = 10000, maxConcurrent = 3, maxBatchEvents = 100, subscribe = false } = {}) {
  await fetch("/api/v1/debug/requests", { method: "DELETE" });
  const r = await drainRun({ n, maxConcurrent, subscribe, options: { batchEndpoint: "/api/v1/progress/batch", maxBatchEvents } });
  const log = await (await fetch("/api/v1/debug/requests")).json();
  const batches = log.filter((e) => e.path === "/api/v1/progress/batch" && e.method === "POST");
  const items = batches.map((e) => (e.keys || []).length).sort((a, b) => a - b);
  const stored = await (await fetch("/api/v1/progress", { headers: { Authorization: `Bearer ${await token(r.user)}` } })).json();
  if (stored.length !== n) throw new Error(`drainBatch: the server holds ${stored.length} records of ${n}`);
  return {
    n, maxConcurrent, maxBatchEvents, seconds: r.seconds, eventsPerSec: r.eventsPerSec, subscriberCalls: r.subscriberCalls,
    requests: batches.length, itemsPerRequest: { min: items[0], median: median(items), max: items[items.length - 1] },
    batchSizeAtEnd: r.batchSize, batchSizeReached: items[items.length - 1],
    singleRequests: log.filter((e) => e.path === "/api/v1/progress" && e.method === "POST").length,
  };
}

const req = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

/** A database created by the library (our schema), with `n` pending events of `user`. */
async function pendingDb(user, n) {
  const dbName = `bench-floor-${rand()}`;
  (await Outbox.open({ endpoint: "/x", dbName, log: "off" })).close();
  const db = await idbOpen(dbName);
  const now = Date.now();
  const tx = db.transaction(["entries", "events"], "readwrite");
  const ids = [];
  for (let i = 0; i < n; i++) {
    const entry = entryRecord(crypto.randomUUID(), user, 60 + (i % 400) / 10, now, now);
    const id = crypto.randomUUID();
    tx.objectStore("entries").add(entry);
    tx.objectStore("events").add(eventRecord(id, entry, now + i));
    ids.push([id, entry.id]);
  }
  await done(tx);
  return { db, dbName, ids };
}

/**
 * The storage floor of a drain: a hand-written JS outbox that makes the IndexedDB requests our
 * processor makes (src/store/queue.rs `claim_in` and `record_in`: the same transactions, stores,
 * reads and writes, in the same rounds, on the same records) with the same upload pattern
 * (`inFlight` slots sharing claims of `claimSize` events, one request per event; or, with
 * `batchSize`, claims of that many sent to the batch endpoint; results group-committed), and
 * nothing else: no validation, no retry decisions, no wasm. What our drain could reach if its own
 * code cost nothing beyond IndexedDB and fetch. Two what-ifs for diagnosis (not what we do, and
 * not crash-safe as written): `lean` reads the claimed events back with one getAll and renews the
 * heartbeat at most once a second; `claimJournal` records a claim as one record naming its events
 * instead of a put per event (and the results then skip reading the events back).
 */
export async function jsOutboxDrain({ n = 1000, inFlight = 3, batchSize = 0, claimSize = 10, lean = false, claimJournal = false } = {}) {
  const user = `jsdrain-${rand()}`;
  const { db, dbName } = await pendingDb(user, n);
  const tok = await token(user);
  const owner = crypto.randomUUID();
  {
    const tx = db.transaction(["meta"], "readwrite");
    tx.objectStore("meta").put({ owner, gen: 1, beat: 0, beatAt: Date.now() }, `leader:${user}`);
    await done(tx);
  }
  let claiming = Promise.resolve();
  let more = true;
  const results = [];
  let wake = null;
  let workersLeft = inFlight;
  let completed = 0;
  let lastBeat = 0;
  let lastKey = null; // claimJournal: where the last claim ended in the `ready` index
  const claim = (limit) => {
    const run = claiming.then(async () => {
      if (!more) return [];
      const tx = db.transaction(["events", "entries", "tombstones", "meta", "quarantine"], "readwrite", { durability: "relaxed" });
      const events = tx.objectStore("events");
      const at = Date.now();
      // Round 1: the uploader record (fencing) and the retries come due; round 2: the queue's head.
      const retry = events.index("retry");
      const [holder] = await Promise.all([
        req(tx.objectStore("meta").get(`leader:${user}`)),
        req(retry.getAll(IDBKeyRange.bound([user, -Infinity], [user, at]), 500)),
        req(retry.getAll(IDBKeyRange.bound([user, at + 700_000], [user, Infinity]), 500)),
      ]);
      if (holder.owner !== owner) throw new Error("fenced");
      const got = await req(events.index("ready").getAll(lastKey ? IDBKeyRange.bound(lastKey, [user, Infinity, Infinity], true) : IDBKeyRange.bound([user, -Infinity, -Infinity], [user, Infinity, Infinity]), limit));
      if (claimJournal) {
        // `claimJournal` (a what-if, not what we do): the claim is one record naming its events
        // (a real design would also keep them out of the next claim's range) instead of a put each.
        tx.objectStore("meta").put({ owner, at, ids: got.map((e) => e.id) }, `claim:${user}:${got[0]?.id}`);
        for (const e of got) Object.assign(e, { status: "processing", requestCount: e.requestCount + 1, lastAttemptAt: at, claims: e.claims + 1, claimedBy: owner, sk: 1, rdy: null });
        lastKey = got.length ? [user, -0, got[got.length - 1].createdAt] : lastKey;
      } else {
        for (const e of got) {
          Object.assign(e, { status: "processing", requestCount: e.requestCount + 1, lastAttemptAt: at, claims: e.claims + 1, claimedBy: owner, sk: 1, rdy: null });
          events.put(e);
        }
      }
      await done(tx);
      more = got.length >= limit;
      return got;
    });
    claiming = run.catch(() => {});
    return run;
  };
  const body = (e, item) => ({
    ...(item ? { idempotencyKey: e.id, operation: e.operation } : {}),
    localId: e.entityId, userId: e.userId, type: e.metadata.type, quantity: e.metadata.quantity, unit: e.metadata.unit, date: new Date(e.metadata.date).toISOString(),
  });
  const push = (e, id) => {
    results.push({ e, id, at: Date.now() });
    if (wake) wake();
  };
  const queue = []; // one request per event: claimed events, shared by the slots
  const worker = async () => {
    for (;;) {
      if (batchSize) {
        const items = await claim(batchSize);
        if (!items.length) break;
        const res = await fetch("/api/v1/progress/batch", {
          method: "POST", cache: "no-store", redirect: "manual", headers: { "Content-Type": "application/json", Authorization: `Bearer ${tok}` },
          body: JSON.stringify({ events: items.map((e) => body(e, true)) }),
        });
        const answer = await res.json();
        items.forEach((e, i) => push(e, String(answer.results[i].id)));
      } else {
        if (!queue.length) {
          const got = await claim(claimSize);
          queue.push(...got);
        }
        const e = queue.shift();
        if (!e) break;
        const res = await fetch("/api/v1/progress", {
          method: "POST", cache: "no-store", redirect: "manual",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${tok}`, "Idempotency-Key": e.id },
          body: JSON.stringify(body(e, false)),
        });
        push(e, String((await res.json()).id));
      }
    }
    workersLeft--;
    if (wake) wake();
  };
  const recorder = async () => {
    for (;;) {
      if (!results.length) {
        if (!workersLeft) return;
        await new Promise((r) => (wake = r));
        wake = null;
        continue;
      }
      const group = results.splice(0);
      const tx = db.transaction(["events", "entries", "tombstones", "meta"], "readwrite", { durability: "relaxed" });
      const [events, entries, tombstones, meta] = ["events", "entries", "tombstones", "meta"].map((s) => tx.objectStore(s));
      // Round 1: the events as they stand; round 2: the entries of completed creates and the
      // user's stats and uploader records; then the writes (a tombstone is read only for an
      // entry that is gone: never here).
      let stored;
      if (lean && !claimJournal) {
        // `lean` (a what-if, not what we do): the claimed events in one getAll of the `state`
        // index (processing) instead of one get each, the heartbeat at most once a second.
        const processing = await req(events.index("state").getAll(IDBKeyRange.bound([user, 1, -Infinity], [user, 1, Infinity])));
        const byId = new Map(processing.map((e) => [e.id, e]));
        stored = group.map((g) => byId.get(g.e.id));
      } else {
        stored = claimJournal ? group.map((g) => g.e) : await Promise.all(group.map((g) => req(events.get(g.e.id))));
      }
      const beat = !lean || Date.now() - lastBeat >= 1000;
      const [found, stats, holder] = await Promise.all([
        Promise.all(stored.map((e) => req(entries.get(e.entityId)))),
        req(meta.get(`user:${user}`)),
        beat ? req(meta.get(`leader:${user}`)) : null,
      ]);
      for (let i = 0; i < group.length; i++) {
        const e = stored[i], { id, at } = group[i];
        if (found[i]) entries.put({ ...found[i], backendId: id, updatedAt: at });
        else await req(tombstones.get(e.entityId));
        events.put(Object.assign(e, { status: "completed", completedAt: at, sk: 2, done: at }));
      }
      completed += group.length;
      meta.put({ ...(stats || { lastError: null, lastErrorAt: null, latencies: [], failedInARow: 0 }), completed, lastSyncAt: Date.now() }, `user:${user}`);
      if (beat) {
        meta.put({ ...holder, beat: holder.beat + 1, beatAt: Date.now() }, `leader:${user}`);
        lastBeat = Date.now();
      }
      await done(tx);
    }
  };
  const t0 = performance.now();
  await Promise.all([...Array.from({ length: inFlight }, worker), recorder()]);
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  await drop(dbName);
  if (completed !== n) throw new Error(`jsOutboxDrain: ${completed} of ${n} completed`);
  return { n, inFlight, batchSize, seconds, eventsPerSec: n / seconds };
}

/**
 * What one IndexedDB request costs here, in our schema, as the drain makes them: `k` requests of
 * one kind issued at once in one relaxed readwrite transaction (as `record_in` does), timed to its
 * commit. The kinds take turns, `reps` rounds; per kind the median over rounds of
 * (its transaction - an empty transaction of the same round) / k, in ms per request.
 */
export async function idbCosts({ k = 200, reps = 7 } = {}) {
  const user = `costs-${rand()}`;
  const { db, dbName, ids } = await pendingDb(user, k * reps);
  const now = Date.now();
  const scope = ["events", "entries", "tombstones", "meta"];
  const kinds = {
    empty: async () => {},
    eventGet: (tx, some) => Promise.all(some.map(([id]) => req(tx.objectStore("events").get(id)))),
    entryGet: (tx, some) => Promise.all(some.map(([, id]) => req(tx.objectStore("entries").get(id)))),
    tombstoneGetMiss: (tx, some) => Promise.all(some.map(([, id]) => req(tx.objectStore("tombstones").get(id)))),
    getAllPerRecord: (tx) => req(tx.objectStore("events").index("ready").getAll(IDBKeyRange.bound([user, -Infinity, -Infinity], [user, Infinity, Infinity]), k)),
    // pending -> processing, as a claim writes it (index keys change); the records were read beforehand
    eventPutClaim: (tx, some, records) => { for (const e of records) tx.objectStore("events").put({ ...e, status: "processing", claims: 1, sk: 1, rdy: null }); },
    entryPut: (tx, some) => { for (const [, id] of some) tx.objectStore("entries").put({ ...entryRecord(id, user, 70, now, now), backendId: "srv-1" }); },
  };
  const records = [];
  {
    const tx = db.transaction(["events"], "readonly");
    const all = await req(tx.objectStore("events").getAll());
    const byId = new Map(all.map((e) => [e.id, e]));
    for (const [id] of ids) records.push(byId.get(id));
  }
  const samples = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, []]));
  for (let r = 0; r < reps; r++) {
    const some = ids.slice(r * k, (r + 1) * k);
    const rs = records.slice(r * k, (r + 1) * k);
    for (const [kind, f] of Object.entries(kinds)) {
      const t0 = performance.now();
      const tx = db.transaction(scope, "readwrite", { durability: "relaxed" });
      await f(tx, some, rs);
      await done(tx);
      samples[kind].push(performance.now() - t0);
    }
  }
  db.close();
  await drop(dbName);
  const out = { emptyTransactionMs: median(samples.empty) };
  for (const kind of Object.keys(kinds).filter((x) => x !== "empty")) out[`${kind}Ms`] = median(samples[kind].map((t, r) => (t - samples.empty[r]) / k));
  return out;
}

/** stats() with a backlog: `n` pending events (not started); p50 of `repeats` calls. */
export async function statsBacklog({ n, repeats = 9 }) {
  const p = await prepareDrain({ n });
  const times = [];
  for (let i = 0; i < repeats + 2; i++) {
    const t = performance.now();
    await p.outbox.stats(p.user);
    if (i >= 2) times.push(performance.now() - t); // two warm-up calls
  }
  p.outbox.close();
  await drop(p.dbName);
  return { pending: n, stats: summary(times) };
}

/** Save -> server receipt latency with wake-on-save (default 2 s interval: only the wake-up is fast). */
export async function latency({ n = 100 } = {}) {
  const user = `latency-${rand()}`;
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName: `bench-latency-${rand()}`, token: await token(user), log: "off" });
  outbox.start(user);
  await sleep(300); // the start-up pass is over; the loop sleeps for 2 s between passes
  const started = new Map();
  for (let i = 0; i < n; i++) {
    const t = Date.now();
    const e = await outbox.saveWeight(70 + i / 100);
    started.set(e.id, t);
    while ((await outbox.stats()).completed < i + 1) await sleep(2);
    await sleep(5 + (i % 7)); // spread saves over the loop's timer phase
  }
  const records = await (await fetch("/api/v1/progress?all=1")).json();
  const samples = records.filter((r) => started.has(r.localId)).map((r) => Date.parse(r.receivedAt) - started.get(r.localId));
  outbox.close();
  return summary(samples);
}

/** Writes `completed` completed events (their entries deleted long ago) and `pending` pending ones for `user`. */
async function populate(dbName, user, completed, pending) {
  const db = await idbOpen(dbName);
  const now = Date.now();
  const chunk = 5000;
  for (let start = 0; start < completed; start += chunk) {
    const tx = db.transaction(["events"], "readwrite");
    const events = tx.objectStore("events");
    for (let i = start; i < Math.min(completed, start + chunk); i++) {
      const t = now - 3_600_000 + i;
      events.put(eventRecord(`done-${i}`, entryRecord(`gone-${i}`, user, 70, t, t), t, t + 50));
    }
    await done(tx);
  }
  await addPending(db, user, pending, "p0");
  const tx = db.transaction(["meta"], "readwrite");
  tx.objectStore("meta").put({ completed, lastSyncAt: now, lastError: null, lastErrorAt: null, latencies: [], failedInARow: 0 }, `user:${user}`);
  await done(tx);
  db.close();
}

function addPending(db, user, count, run) {
  const tag = `${run}-${rand()}`; // event ids are Idempotency-Keys: unique across runs
  const tx = db.transaction(["entries", "events"], "readwrite");
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const entry = entryRecord(`${tag}-entry-${i}`, user, 70, now, now);
    tx.objectStore("entries").put(entry);
    tx.objectStore("events").put(eventRecord(`${tag}-event-${i}`, entry, now + i));
  }
  return done(tx);
}

/** Scale: stats() and a one-batch processNow() with `size` events stored (almost all completed). */
export async function scale({ size, repeats = 15 } = {}) {
  const user = `scale-${rand()}`;
  const dbName = `bench-scale-${size}-${rand()}`;
  (await Outbox.open({ endpoint: "/x", dbName, log: "off" })).close();
  await populate(dbName, user, size - 10, 10);
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName, token: await token(user), processingIntervalMs: 3_600_000, log: "off" });
  const statsTimes = [];
  for (let i = 0; i < 3; i++) await outbox.stats(user); // warm-up, not measured
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    const s = await outbox.stats(user);
    statsTimes.push(performance.now() - t);
    if (s.completed + s.pending !== size) throw new Error(`scale: stats report ${s.completed + s.pending} of ${size}`);
  }
  outbox.start(user);
  // The start-up passes upload the first batch; then the loop sleeps (an hour) and only processNow runs.
  for (let s = await outbox.stats(); s.completed < size; s = await outbox.stats()) {
    if (s.gaveUp) throw new Error(`scale: ${s.lastError}`);
    await sleep(10);
  }
  await sleep(300);
  const passTimes = [];
  const db = await idbOpen(dbName);
  for (let i = 0; i < repeats; i++) {
    await addPending(db, user, 10, `r${i}`); // written behind the outbox's back: nothing wakes it
    const t = performance.now();
    const report = await outbox.processNow();
    passTimes.push(performance.now() - t);
    if (report.claimed !== 10) throw new Error(`scale: claimed ${report.claimed}, expected 10: ${JSON.stringify(report)} ${JSON.stringify(await outbox.stats())}`);
  }
  db.close();
  outbox.close();
  await drop(dbName);
  return { size, stats: summary(statsTimes), pass: summary(passTimes) };
}

window.bench = { saveCost, rawFetch, rawBatch, jsOutboxDrain, idbCosts, prepareDrain, runDrain, drain, drainBatch, latency, scale, statsBacklog };
document.querySelector("#status").textContent = "ready";

// Unattended mode (bench/run.mjs): `page.html#<calls>`, calls = encodeURIComponent(JSON of
// [[name, args], ...]). The page runs them in order and writes each result to the console as
// `BENCH-RESULT <i> <base64 JSON>` (an error: `BENCH-ERROR <i> <message>`), then `BENCH-DONE`. The
// runner reads Chromium's console log on stderr: no DevTools client is attached to the page while
// it measures (Playwright's would instrument every request: measured, ~40% of a bare fetch loop's rate).
if (location.hash.length > 1) {
  const calls = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  const encode = (v) => {
    const bytes = new TextEncoder().encode(JSON.stringify(v));
    let text = "";
    for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
    return btoa(text);
  };
  // A drain in two calls (the backlog is written by the first, not counted by a runner that
  // watches the second), and a pause (a runner takes its readings during it).
  let prepared = null;
  const calls2 = {
    prepareDrain: async (a) => ((prepared = await prepareDrain(a)), { n: prepared.n }),
    runDrain: async () => {
      const { user, ...r } = await runDrain(prepared);
      return r;
    },
    sleep: (ms) => sleep(ms).then(() => ms),
  };
  for (const [i, [name, args]] of calls.entries()) {
    try {
      console.log(`BENCH-RESULT ${i} ${encode(await (calls2[name] || window.bench[name])(args))}`);
    } catch (e) {
      console.log(`BENCH-ERROR ${i} ${name}: ${e && e.stack ? e.stack.replace(/\s+/g, " ") : e}`);
      break;
    }
  }
  console.log("BENCH-DONE");
}
