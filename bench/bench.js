// The in-page half of `npm run bench`: every contender runs in this one page, interleaved, so
// the machine's noise hits all of them alike. bench/run.mjs drives it and writes the results.
import init, { Outbox } from "/pkg/progress_outbox.js";
import { Queue } from "workbox-background-sync/Queue.js"; // index.js re-exports without file extensions

await init();
const rand = () => Math.random().toString(36).slice(2, 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/** The hand-written baseline: the same two records, two stores, same indexes, same durability. */
function jsSave(db, i) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(["entries", "events"], "readwrite", { durability: "strict" });
    const now = Date.now();
    const id = crypto.randomUUID();
    const quantity = 70 + (i % 100) / 10;
    tx.objectStore("entries").add({ id, userId: "bench", type: "weight", quantity, unit: "kg", date: now, backendId: null, createdAt: now, updatedAt: now });
    tx.objectStore("events").add({
      id: crypto.randomUUID(), eventType: "progressEntry", entityId: id, userId: "bench", status: "pending",
      metadata: { type: "weight", quantity, date: now }, isNewRecord: true, attemptCount: 0, maxAttempts: 5, priority: 0,
      createdAt: now, lastAttemptAt: null, nextAttemptAt: null, completedAt: null, errorMessage: null, sk: 0, rdy: -0, due: null, done: null,
    });
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

/** Save cost: saveWeight vs the JS baseline vs workbox Queue.pushRequest, interleaved in rounds. */
export async function saveCost({ n = 1000, concurrency = 1, rounds = 10 } = {}) {
  const tag = rand();
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName: `bench-save-${tag}`, log: "off" });
  // The baseline database gets exactly our schema (stores and indexes): open it with the library once.
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
  jsDb.close();
  const out = {};
  for (const k of names) out[k] = { ...summary(samples[k]), opsPerSec: (samples[k].length / elapsed[k]) * 1000 };
  return out;
}

/** The network ceiling: the same POSTs from a bare fetch loop, `k` in flight, nothing stored. */
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
      await res.text();
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { n, inFlight, seconds, eventsPerSec: n / seconds };
}

/** Drain: a backlog of `n` events uploaded to the dev API; events per second. */
export async function drain({ n = 1000, maxConcurrent = 3 } = {}) {
  const user = `drain-${rand()}`;
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName: `bench-drain-${rand()}`, token: await token(user), maxConcurrent, log: "off" });
  for (let i = 0; i < n; i++) await outbox.saveWeight(60 + (i % 400) / 10, { userId: user });
  const t0 = performance.now();
  outbox.start(user);
  for (;;) {
    const s = await outbox.stats();
    if (s.completed >= n) break;
    if (s.gaveUp > 0) throw new Error(`drain: ${s.gaveUp} events gave up: ${s.lastError}`);
    await sleep(25); // each poll is a read transaction: polling harder would slow the drain it measures
  }
  const seconds = (performance.now() - t0) / 1000;
  outbox.close();
  return { n, maxConcurrent, seconds, eventsPerSec: n / seconds };
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

function put(store, value, key) {
  return key === undefined ? store.put(value) : store.put(value, key);
}

/** Writes `completed` completed events and `pending` pending ones (with entries) for `user`. */
async function populate(dbName, user, completed, pending) {
  const db = await idbOpen(dbName);
  const now = Date.now();
  const chunk = 5000;
  for (let start = 0; start < completed; start += chunk) {
    await new Promise((resolve, reject) => {
      const tx = db.transaction(["events"], "readwrite");
      const events = tx.objectStore("events");
      for (let i = start; i < Math.min(completed, start + chunk); i++) {
        const t = now - 3_600_000 + i;
        put(events, {
          id: `done-${i}`, eventType: "progressEntry", entityId: `gone-${i}`, userId: user, status: "completed",
          metadata: { type: "weight", quantity: 70, date: t }, isNewRecord: true, attemptCount: 1, maxAttempts: 5, priority: 0,
          createdAt: t, lastAttemptAt: t, nextAttemptAt: null, completedAt: t + 50, errorMessage: null, sk: 2, rdy: null, due: null, done: t + 50,
        });
      }
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  }
  await addPending(db, user, pending, "p0");
  await new Promise((resolve) => {
    const tx = db.transaction(["meta"], "readwrite");
    put(tx.objectStore("meta"), { completed, lastSyncAt: now, lastError: null, lastErrorAt: null, latencies: [] }, `user:${user}`);
    tx.oncomplete = resolve;
  });
  db.close();
}

function addPending(db, user, count, run) {
  const tag = `${run}-${rand()}`; // event ids are Idempotency-Keys: unique across runs
  return new Promise((resolve, reject) => {
    const tx = db.transaction(["entries", "events"], "readwrite");
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      const id = `${tag}-entry-${i}`;
      put(tx.objectStore("entries"), { id, userId: user, type: "weight", quantity: 70, unit: "kg", date: now, backendId: null, createdAt: now, updatedAt: now });
      put(tx.objectStore("events"), {
        id: `${tag}-event-${i}`, eventType: "progressEntry", entityId: id, userId: user, status: "pending",
        metadata: { type: "weight", quantity: 70, date: now }, isNewRecord: true, attemptCount: 0, maxAttempts: 5, priority: 0,
        createdAt: now + i, lastAttemptAt: null, nextAttemptAt: null, completedAt: null, errorMessage: null, sk: 0, rdy: -0, due: null, done: null,
      });
    }
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
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
  return { size, stats: summary(statsTimes), pass: summary(passTimes) };
}

window.bench = { saveCost, rawFetch, drain, latency, scale };
document.querySelector("#status").textContent = "ready";
