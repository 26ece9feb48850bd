// What a drain asks of IndexedDB, counted (a figure no machine's noise changes):
//
//   node bench/idb-requests.mjs [events=1000]      (after `npm run build`)
//
// Wraps the page's IDBObjectStore/IDBIndex/IDBDatabase methods with counters (this page only; the
// timed bench never does), then drains `events` saved events to the dev API one request per event
// (maxConcurrent 3), and again through batchEndpoint (maxBatchEvents 100), and prints requests and
// transactions per event by kind: store.method, and per transaction mode and durability. The same
// for the storage floor (bench.js jsOutboxDrain), which should make the same requests.
import { rmSync } from "node:fs";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, startServer, tempDir } from "../tests/e2e/helpers.mjs";

const N = Number(process.argv[2] || 1000);
const server = await startServer({ env: { BENCH: "1", QUIET: "1" } });
const profileDir = tempDir("idb-requests");
const context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
try {
  const page = context.pages()[0] || (await context.newPage());
  await page.addInitScript(() => {
    const counts = (window.__idbCounts = new Map());
    const bump = (k) => counts.set(k, (counts.get(k) || 0) + 1);
    for (const [proto, kind] of [[IDBObjectStore.prototype, "store"], [IDBIndex.prototype, "index"]]) {
      for (const m of ["get", "getAll", "getAllKeys", "getKey", "put", "add", "delete", "clear", "count", "openCursor", "openKeyCursor"]) {
        const f = proto[m];
        if (!f) continue;
        proto[m] = function (...a) {
          bump(`${kind === "store" ? this.name : `${this.objectStore.name}.index(${this.name})`}.${m}`);
          return f.apply(this, a);
        };
      }
    }
    const tx = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (names, mode, options) {
      bump(`transaction ${mode || "readonly"}${options?.durability ? ` (${options.durability})` : ""}`);
      return tx.call(this, names, mode, options);
    };
  });
  await page.goto(`${server.url}/bench/page.html`);
  await page.waitForFunction(() => window.bench, null, { timeout: 30000 });
  for (const [batch, floor] of [[false, false], [false, true], [true, false], [true, true]]) {
    const counts = floor
      ? await page.evaluate(async ([n, batch]) => {
          window.__idbCounts.clear();
          await window.bench.jsOutboxDrain({ n, inFlight: 3, batchSize: batch ? 100 : 0 });
          const counts = Object.fromEntries(window.__idbCounts);
          // Its backlog (written inside the call, one transaction) is not part of a drain.
          delete counts["entries.add"];
          delete counts["events.add"];
          return counts;
        }, [N, batch])
      : await page.evaluate(async ([n, batch]) => {
      const { Outbox } = await import("/pkg/progress_outbox.js");
      const user = `count-${Math.random().toString(36).slice(2)}`;
      const res = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId: user, ttlMs: 3_600_000 }) });
      const { token } = await res.json();
      const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName: user, token, maxConcurrent: 3, log: "off", ...(batch ? { batchEndpoint: "/api/v1/progress/batch", maxBatchEvents: 100 } : {}) });
      for (let i = 0; i < n; i += 10) await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, j) => outbox.saveWeight(70 + ((i + j) % 400) / 100, { userId: user })));
      await new Promise((r) => setTimeout(r, 300));
      window.__idbCounts.clear();
      outbox.start(user);
      // Wait for the server to hold every record (no stats() polls: they would be counted).
      for (;;) {
        await new Promise((r) => setTimeout(r, 200));
        const got = await (await fetch("/api/v1/progress", { headers: { Authorization: `Bearer ${token}` } })).json();
        if (got.length >= n) break;
      }
      await new Promise((r) => setTimeout(r, 1000)); // the last results are recorded
      const counts = Object.fromEntries(window.__idbCounts);
      const s = await outbox.stats();
      outbox.close();
      if (s.completed !== n) throw new Error(`${s.completed} of ${n} completed`);
      return counts;
    }, [N, batch]);
    const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    const requests = rows.filter(([k]) => !k.startsWith("transaction")).reduce((a, [, v]) => a + v, 0);
    const txs = rows.filter(([k]) => k.startsWith("transaction")).reduce((a, [, v]) => a + v, 0);
    const who = floor ? "the storage floor (bench.js jsOutboxDrain; its backlog's writes left out)" : "the outbox";
    console.log(`\n${who}, drain of ${N} events ${batch ? "through batchEndpoint (maxBatchEvents 100)" : "one request per event"}, 3 in flight: ${(requests / N).toFixed(2)} IndexedDB requests and ${(txs / N).toFixed(3)} transactions per event`);
    for (const [k, v] of rows) console.log(`${(v / N).toFixed(3).padStart(8)} per event  ${String(v).padStart(6)}  ${k}`);
  }
} finally {
  await context.close();
  await server.stop();
  rmSync(server.dataDir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
}
