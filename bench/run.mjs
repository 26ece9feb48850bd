// `npm run bench`: headless Chromium against the dev API on loopback. Writes bench/results.json,
// bench/results.md (the tables the README shows) and bench/chart.svg, and prints the tables.
//
// Figures that depend on the machine are reported next to a baseline measured in the same run, in
// the same page, as ratios; each ratio is the median over rounds that alternate baseline and
// contender, so the machine's noise hits both alike. Each measuring page runs unattended in a
// Chromium launched for it (bench.js's `page.html#calls` mode), with no DevTools client attached:
// Playwright's per-request instrumentation cost a bare fetch loop ~40% of its rate when measured.
// Only the cold start-up is timed through Playwright.
//
//   node bench/run.mjs [--quick] [--memory]
//   --quick   smaller counts and fewer rounds (a smoke run; writes only bench/results.quick.json)
//   --memory  IndexedDB in memory (`--incognito`) instead of a fresh profile on disk, as a user's
//             browser has it (the default; the save comparison is run both ways regardless)
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, root, startServer } from "../tests/e2e/helpers.mjs";
import { unattended } from "./session.mjs";
import { packageSizes, BUDGET_GZIP_KB } from "../scripts/size.mjs";

const quick = process.argv.includes("--quick");
const memory = process.argv.includes("--memory");
const N = quick ? 300 : 1000; // single-request drains and saves
const NB = quick ? 3000 : 10000; // batch drains
const NF = quick ? 2000 : 3000; // the batch drain's storage floor (hand-written JS): a rate, fewer events suffice
const ROUNDS = quick ? 1 : 5; // single-request drain rounds (each: baseline, floor, contender)
const BROUNDS = quick ? 1 : 3; // batch drain rounds
const log = (...a) => console.log("[bench]", ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// pkg/ is shared with other builds: note its wasm at the start, and say so if it changed by the end.
const wasmHash = () => createHash("sha256").update(readFileSync(join(root, "pkg", "progress_outbox_bg.wasm"))).digest("hex").slice(0, 16);
const hashAtStart = wasmHash();
const server = await startServer({ env: { BENCH: "1", QUIET: "1" } });
const session = (calls, { inMemory = memory } = {}) => unattended(server.url, calls, { inMemory });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
const results = {
  date: new Date().toISOString(),
  machine: { chromium: browser.version(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, loadAverageAtStart: os.loadavg()[0] },
  quick,
  indexedDB: memory ? "in memory (browser context without a profile)" : "on disk (a fresh browser profile per page)",
};

/** The server alone: a Node client POSTing `n` bodies with `inFlight` keep-alive connections. */
async function serverAlone(n, inFlight) {
  const url = new URL(server.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const request = (method, path, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, method, path, agent, headers: { "content-type": "application/json", ...headers } }, (res) => {
        let text = "";
        res.on("data", (d) => (text += d)).on("end", () => resolve({ status: res.statusCode, text }));
      });
      req.on("error", reject);
      req.end(body);
    });
  const { token } = JSON.parse((await request("POST", "/api/v1/login", JSON.stringify({ userId: `alone-${Date.now()}` }))).text);
  const run = `alone-${Date.now()}`;
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const body = JSON.stringify({ localId: `${run}-${i}`, type: "weight", quantity: 70, unit: "kg", date: new Date().toISOString() });
      const r = await request("POST", "/api/v1/progress", body, { authorization: `Bearer ${token}`, "idempotency-key": `${run}-${i}` });
      if (r.status !== 200 && r.status !== 201) throw new Error(`server alone: ${r.status} ${r.text}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  agent.destroy();
  return { n, inFlight, eventsPerSec: n / ((performance.now() - t0) / 1000) };
}

try {
  // 1. Save cost
  log(`save cost: ${N} saves per contender one at a time, then ${N} ten at a time, interleaved; then one at a time with IndexedDB ${memory ? "on disk" : "in memory"}`);
  [results.saveSequential, results.saveConcurrent] = await session([["saveCost", { n: N, concurrency: 1, rounds: 10 }], ["saveCost", { n: N, concurrency: 10, rounds: 10 }]]);
  results.saveFairness = results.saveSequential.fairness;
  delete results.saveSequential.fairness;
  delete results.saveConcurrent.fairness;
  // The same comparison with IndexedDB in memory (no disk flush to wait for): only CPU cost shows.
  const [other] = await session([["saveCost", { n: N, concurrency: 1, rounds: 10 }]], { inMemory: !memory });
  delete other.fairness;
  results.saveSequentialOther = { indexedDB: memory ? "on disk" : "in memory", ...other };

  // 2. Drain, one request per event: rounds of (bare fetch loop, [storage floor], outbox) in one page
  results.drain = [];
  const configs = quick ? [[0, 3]] : [[0, 3], [0, 1], [20, 3], [20, 1]];
  for (const [latencyMs, maxConcurrent] of configs) {
    await server.faults(latencyMs ? { mode: "slow", delayMs: latencyMs } : { mode: "healthy" });
    const target = latencyMs === 0 && maxConcurrent === 3; // the target's row: every round, and the storage floor
    const rounds = target ? ROUNDS : 1;
    log(`drain: ${rounds} round(s) of ${N} bare POSTs${target ? `, ${N} events by hand-written JS making our IndexedDB requests` : ""}, then ${N} events from the outbox; ${latencyMs} ms server latency, ${maxConcurrent} in flight`);
    // Warm-up, not counted: every contender once (connections, JIT, wasm tiers).
    const warmUp = [["rawFetch", { n: 1000, inFlight: maxConcurrent }], ...(target ? [["jsOutboxDrain", { n: 200, inFlight: maxConcurrent }]] : []), ["drain", { n: 200, maxConcurrent }]];
    const calls = [...warmUp];
    for (let r = 0; r < rounds; r++) {
      calls.push(["rawFetch", { n: N, inFlight: maxConcurrent }]);
      if (target) calls.push(["jsOutboxDrain", { n: N, inFlight: maxConcurrent }]);
      calls.push(["drain", { n: N, maxConcurrent }]);
    }
    const got = (await session(calls)).slice(warmUp.length);
    const rows = [];
    while (got.length) {
      const bare = got.shift();
      const floor = target ? got.shift() : null;
      const outbox = got.shift();
      rows.push({ bare: bare.requestsPerSec, jsFloor: floor?.eventsPerSec ?? null, outbox: outbox.eventsPerSec, ratio: outbox.eventsPerSec / bare.requestsPerSec, seconds: outbox.seconds });
    }
    log(`server alone: ${N} POSTs from a Node client, ${maxConcurrent} in flight`);
    const alone = await serverAlone(N, maxConcurrent);
    results.drain.push({
      n: N, maxConcurrent, serverLatencyMs: latencyMs, rounds: rows,
      eventsPerSec: median(rows.map((r) => r.outbox)), ceilingPerSec: median(rows.map((r) => r.bare)), ofCeiling: median(rows.map((r) => r.ratio)),
      jsFloorPerSec: target ? median(rows.map((r) => r.jsFloor)) : null,
      serverAlonePerSec: alone.eventsPerSec,
    });
  }
  await server.faults({ mode: "healthy" });

  // 3. Drain through batchEndpoint: rounds of (bare fetch loop, bare batch loop, storage floor, outbox) in one page
  log(`batch drain: ${BROUNDS} round(s) of ${N} bare POSTs, ${NB} events in bare batches of 100, ${NF} by hand-written JS making our IndexedDB requests, then ${NB} events from the outbox (batchEndpoint, maxBatchEvents 100, maxConcurrent 3); then once more with a subscriber, and IndexedDB's cost per request`);
  const bWarmUp = [["rawFetch", { n: 1000, inFlight: 3 }], ["rawBatch", { n: 1000, size: 100, inFlight: 3 }], ["jsOutboxDrain", { n: 500, inFlight: 3, batchSize: 100 }], ["drainBatch", { n: 500, maxConcurrent: 3, maxBatchEvents: 100 }]];
  const bcalls = [...bWarmUp];
  for (let r = 0; r < BROUNDS; r++) {
    bcalls.push(["rawFetch", { n: N, inFlight: 3 }], ["rawBatch", { n: NB, size: 100, inFlight: 3 }], ["jsOutboxDrain", { n: NF, inFlight: 3, batchSize: 100 }], ["drainBatch", { n: NB, maxConcurrent: 3, maxBatchEvents: 100 }]);
  }
  bcalls.push(["drainBatch", { n: NB, maxConcurrent: 3, maxBatchEvents: 100, subscribe: true }], ["idbCosts", {}]);
  const bgot = (await session(bcalls)).slice(bWarmUp.length);
  results.idbCosts = bgot.pop();
  const subscribed = bgot.pop();
  const brows = [];
  while (bgot.length) {
    const [bare, bareBatch, floor, outbox] = bgot.splice(0, 4);
    brows.push({
      bareRequestsPerSec: bare.requestsPerSec, bareBatchEventsPerSec: bareBatch.eventsPerSec, jsFloorEventsPerSec: floor.eventsPerSec, ...outbox,
      ofBare: outbox.eventsPerSec / bare.requestsPerSec, ofBareBatch: outbox.eventsPerSec / bareBatch.eventsPerSec, ofJsFloor: outbox.eventsPerSec / floor.eventsPerSec,
    });
  }
  const mid = brows.map((r) => r.eventsPerSec).indexOf(median(brows.map((r) => r.eventsPerSec)));
  results.batchDrain = {
    n: NB, maxConcurrent: 3, maxBatchEvents: 100, rounds: brows,
    eventsPerSec: median(brows.map((r) => r.eventsPerSec)),
    bareRequestsPerSec: median(brows.map((r) => r.bareRequestsPerSec)),
    bareBatchEventsPerSec: median(brows.map((r) => r.bareBatchEventsPerSec)),
    jsFloorEventsPerSec: median(brows.map((r) => r.jsFloorEventsPerSec)), jsFloorEvents: NF,
    ofJsFloor: median(brows.map((r) => r.ofJsFloor)),
    ofBare: median(brows.map((r) => r.ofBare)),
    ofBareBatch: median(brows.map((r) => r.ofBareBatch)),
    batchSizeReached: Math.min(...brows.map((r) => r.batchSizeReached)),
    batchSizeAtEnd: Math.min(...brows.map((r) => r.batchSizeAtEnd)),
    requests: brows[mid].requests, itemsPerRequest: brows[mid].itemsPerRequest,
    withSubscriber: { eventsPerSec: subscribed.eventsPerSec, subscriberCalls: subscribed.subscriberCalls },
  };

  // 4. Latency
  log("save -> server receipt latency, wake-on-save");
  [results.latency] = await session([["latency", { n: quick ? 30 : 100 }]]);

  // 5. Scale
  results.scale = [];
  for (const size of quick ? [1000, 10000] : [1000, 10000, 100000]) {
    log(`scale: ${size} events stored`);
    results.scale.push((await session([["scale", { size }]]))[0]);
  }
  log("stats() with 1,000 and 10,000 events pending");
  results.statsBacklog = await session([["statsBacklog", { n: 1000 }], ["statsBacklog", { n: 10000 }]]);

  // 6. Start-up (cold: a fresh Playwright context, no HTTP or compiled-code cache) and size
  const startups = [];
  for (let i = 0; i < 7; i++) {
    const ctx = await browser.newContext();
    const pg = await ctx.newPage();
    await pg.goto(`${server.url}/bench/startup.html`);
    startups.push(await pg.waitForFunction(() => window.__startup, null, { timeout: 30000 }).then((h) => h.jsonValue()));
    await ctx.close();
  }
  const med = (k) => median(startups.map((s) => s[k]));
  results.startup = { initMs: med("initMs"), openMs: med("openMs"), totalMs: med("totalMs"), runs: startups.length };
  results.size = packageSizes(join(root, "pkg"));
} finally {
  await browser.close();
  await server.stop();
  rmSync(server.dataDir, { recursive: true, force: true });
}

results.machine.loadAverageAtEnd = os.loadavg()[0];
results.wasmSha256 = hashAtStart;
if (wasmHash() !== hashAtStart) {
  results.warning = "pkg/progress_outbox_bg.wasm changed during the run (another build): the figures mix two builds; run again";
  console.error(`[bench] WARNING: ${results.warning}`);
}

// ---------- targets (ratios against same-run baselines, so they hold on any machine) ----------
const seq = results.saveSequential;
const so = results.saveSequentialOther;
const mem = memory ? seq : so;
const scaleOf = (size) => results.scale.find((s) => s.size === size);
const big = scaleOf(quick ? 10000 : 100000);
const small = scaleOf(1000);
const d3 = results.drain.find((d) => d.maxConcurrent === 3 && d.serverLatencyMs === 0);
const bd = results.batchDrain;
const gzipKB = results.size.total.gzip / 1024;
const target = (issue, what, value, goal, ok, baseline) => ({ issue, what, value, goal, ok, baseline });
results.targets = [
  target("#10", `saveWeight p50 / hand-written JS transaction p50, IndexedDB ${memory ? "in memory" : "on disk"}`, seq.saveWeight.p50 / seq.jsBaseline.p50, "<= 1.2", seq.saveWeight.p50 / seq.jsBaseline.p50 <= 1.2,
    `saveWeight ${seq.saveWeight.p50.toFixed(3)} ms vs JS ${seq.jsBaseline.p50.toFixed(3)} ms`),
  target("#10", `same, IndexedDB ${results.saveSequentialOther.indexedDB} (context)`, so.saveWeight.p50 / so.jsBaseline.p50, "<= 1.2", so.saveWeight.p50 / so.jsBaseline.p50 <= 1.2,
    `saveWeight ${so.saveWeight.p50.toFixed(3)} ms vs JS ${so.jsBaseline.p50.toFixed(3)} ms`),
  target("-", "saveWeight saves/s / workbox Queue.pushRequest saves/s, IndexedDB in memory (workbox asks for no durability, ours is strict)", mem.saveWeight.opsPerSec / mem.workbox.opsPerSec, ">= 2", mem.saveWeight.opsPerSec / mem.workbox.opsPerSec >= 2,
    `${mem.saveWeight.opsPerSec.toFixed(0)} vs ${mem.workbox.opsPerSec.toFixed(0)} saves/s`),
  target("#10 #13", `drain of ${d3.n}, one request per event, maxConcurrent 3 / bare fetch loop, 3 in flight`, d3.ofCeiling, ">= 0.9", d3.ofCeiling >= 0.9,
    `${d3.eventsPerSec.toFixed(0)} events/s vs ${d3.ceilingPerSec.toFixed(0)} requests/s (medians of ${d3.rounds.length})`),
  target("#13", `drain of ${bd.n} through batchEndpoint (events/s)`, bd.eventsPerSec, ">= 5000", bd.eventsPerSec >= 5000, `adaptive size reached ${bd.batchSizeReached}`),
  target("#13", "batch drain events/s / bare fetch loop requests/s", bd.ofBare, ">= 10", bd.ofBare >= 10,
    `${bd.eventsPerSec.toFixed(0)} events/s vs ${bd.bareRequestsPerSec.toFixed(0)} requests/s`),
  target("#10", "wasm + JS (glue, snippets, entry module), gzip KB", gzipKB, `<= ${BUDGET_GZIP_KB}`, gzipKB <= BUDGET_GZIP_KB,
    `wasm ${(results.size.wasm.gzip / 1024).toFixed(1)} KB + JS ${(results.size.glue.gzip / 1024).toFixed(1)} KB`),
  target("-", `stats() p50, ${big.size / 1000}k / 1k events stored (10 pending)`, big.stats.p50 / small.stats.p50, "<= 1.5", big.stats.p50 / small.stats.p50 <= 1.5,
    `${big.stats.p50.toFixed(2)} vs ${small.stats.p50.toFixed(2)} ms`),
  target("-", `one-batch pass p50, ${big.size / 1000}k / 1k events stored`, big.pass.p50 / small.pass.p50, "<= 1.5", big.pass.p50 / small.pass.p50 <= 1.5,
    `${big.pass.p50.toFixed(1)} vs ${small.pass.p50.toFixed(1)} ms`),
  target("-", "save -> server receipt p50 (ms, loopback)", results.latency.p50, "<= 50", results.latency.p50 <= 50, "wake-on-save"),
];

// ---------- report ----------
const f = (x, d = 2) => (typeof x === "number" ? x.toFixed(d) : String(x));
const lines = [];
lines.push(`Run ${results.date.slice(0, 10)}: Chromium ${results.machine.chromium}, ${results.machine.cpus} CPUs (${results.machine.cpu}), Node ${results.machine.node}; IndexedDB ${results.indexedDB}; load average ${f(results.machine.loadAverageAtStart, 1)} at start, ${f(results.machine.loadAverageAtEnd, 1)} at end${quick ? "; QUICK run (smaller counts)" : ""}.`);
lines.push("");
lines.push(`| target | issue | measured | goal | met | baseline (same run) |`);
lines.push(`|---|---|---|---|---|---|`);
for (const t of results.targets) lines.push(`| ${t.what} | ${t.issue} | ${f(t.value)} | ${t.goal} | ${t.ok ? "yes" : "**no**"} | ${t.baseline} |`);
lines.push("");
lines.push(`| save (ms) | p50 sequential | p95 sequential | saves/s sequential | p50 10 concurrent | p95 10 concurrent | saves/s 10 concurrent | p50 / JS p50 | saves/s / JS saves/s |`);
lines.push(`|---|---|---|---|---|---|---|---|---|`);
for (const k of ["saveWeight", "jsBaseline", "workbox"]) {
  const a = results.saveSequential[k], c = results.saveConcurrent[k];
  lines.push(`| ${k} | ${f(a.p50, 3)} | ${f(a.p95, 3)} | ${f(a.opsPerSec, 0)} | ${f(c.p50, 3)} | ${f(c.p95, 3)} | ${f(c.opsPerSec, 0)} | ${f(a.p50 / seq.jsBaseline.p50)}x | ${f(a.opsPerSec / seq.jsBaseline.opsPerSec)}x |`);
}
for (const k of ["saveWeight", "jsBaseline", "workbox"]) {
  const a = so[k];
  lines.push(`| ${k}, IndexedDB ${so.indexedDB} | ${f(a.p50, 3)} | ${f(a.p95, 3)} | ${f(a.opsPerSec, 0)} | | | | ${f(a.p50 / so.jsBaseline.p50)}x | ${f(a.opsPerSec / so.jsBaseline.opsPerSec)}x |`);
}
const fair = results.saveFairness;
lines.push("");
lines.push(`The JS baseline writes into a database the library created (checked identical: ${Object.keys(fair.schema.stores).length} stores, ${Object.values(fair.schema.stores).reduce((a, st) => a + Object.keys(st.indexes).length, 0)} indexes, schema v${fair.schema.version}) records shaped exactly like ours (checked field by field: entry ${fair.entryFields} fields, event ${fair.eventFields}), in one readwrite transaction with durability "strict".`);
lines.push("");
lines.push(`| drain ${N} events, one request each | server latency | outbox events/s | bare fetch loop, same in flight (requests/s) | outbox / bare | per round | storage floor: hand-written JS making our IndexedDB requests (events/s) | the server alone, Node client (requests/s) |`);
lines.push(`|---|---|---|---|---|---|---|---|`);
for (const d of results.drain) lines.push(`| maxConcurrent ${d.maxConcurrent} | ${d.serverLatencyMs} ms | ${f(d.eventsPerSec, 0)} | ${f(d.ceilingPerSec, 0)} | ${f(d.ofCeiling)}x | ${d.rounds.map((r) => f(r.ratio)).join(", ")} | ${d.jsFloorPerSec === null ? "-" : f(d.jsFloorPerSec, 0)} | ${f(d.serverAlonePerSec, 0)} |`);
lines.push("");
lines.push(`| drain ${bd.n} events through batchEndpoint, maxBatchEvents 100, maxConcurrent 3 | events/s |`);
lines.push(`|---|---|`);
lines.push(`| outbox (median of ${bd.rounds.length}: ${bd.rounds.map((r) => f(r.eventsPerSec, 0)).join(", ")}) | ${f(bd.eventsPerSec, 0)} |`);
lines.push(`| outbox with one subscribe() callback, as an app showing the counts (once, after the rounds) | ${f(bd.withSubscriber.eventsPerSec, 0)} (${bd.withSubscriber.subscriberCalls} callbacks) |`);
lines.push(`| bare fetch loop, one event per POST, 3 in flight (requests/s) | ${f(bd.bareRequestsPerSec, 0)} (outbox: ${f(bd.ofBare, 1)}x) |`);
lines.push(`| bare batch loop, 100 events per POST, 3 in flight, nothing stored | ${f(bd.bareBatchEventsPerSec, 0)} (outbox: ${f(bd.ofBareBatch)}x) |`);
lines.push(`| storage floor: hand-written JS making our IndexedDB requests, batches of 100, 3 in flight (${bd.jsFloorEvents} events) | ${f(bd.jsFloorEventsPerSec, 0)} (outbox: ${f(bd.ofJsFloor)}x) |`);
lines.push(`| adaptive batch size: largest batch sent (starts at 10); stats().batchEvents at the end | ${bd.batchSizeReached}; ${bd.batchSizeAtEnd} |`);
lines.push(`| batch requests sent; items per request min / median / max | ${bd.requests}; ${bd.itemsPerRequest.min} / ${bd.itemsPerRequest.median} / ${bd.itemsPerRequest.max} |`);
lines.push("");
const c = results.idbCosts;
lines.push(`IndexedDB, ms per request (100 issued at once in one relaxed transaction, our schema): event get ${f(c.eventGetMs, 3)}, entry get ${f(c.entryGetMs, 3)}, tombstone get (miss) ${f(c.tombstoneGetMissMs, 3)}, event put (claim) ${f(c.eventPutClaimMs, 3)}, entry put ${f(c.entryPutMs, 3)}, getAll per record ${f(c.getAllPerRecordMs, 3)}; empty readwrite transaction ${f(c.emptyTransactionMs, 2)} ms`);
lines.push("");
lines.push(`| events stored | stats() p50 ms | one-batch pass p50 ms |`);
lines.push(`|---|---|---|`);
for (const s of results.scale) lines.push(`| ${s.size} (10 pending) | ${f(s.stats.p50, 3)} | ${f(s.pass.p50, 3)} |`);
for (const b of results.statsBacklog) lines.push(`| ${b.pending} pending | ${f(b.stats.p50, 3)} | |`);
lines.push("");
lines.push(`save -> server receipt: p50 ${f(results.latency.p50, 0)} ms, p95 ${f(results.latency.p95, 0)} ms (n=${results.latency.n}); cold init() ${f(results.startup.initMs, 1)} ms + Outbox.open ${f(results.startup.openMs, 1)} ms (median of ${results.startup.runs})`);
lines.push("");
lines.push(`| bytes | raw | gzip | brotli |`);
lines.push(`|---|---|---|---|`);
for (const [k, s] of [["wasm", results.size.wasm], ...results.size.js.map((j) => [j.file, j]), ["all JS", results.size.glue], ["total", results.size.total]]) {
  lines.push(`| ${k} | ${f(s.raw / 1024, 1)} KB | ${f(s.gzip / 1024, 1)} KB | ${f(s.brotli / 1024, 1)} KB |`);
}
lines.push("");
lines.push("How these were measured (bench/run.mjs, bench/bench.js):");
lines.push("- Every measuring page runs unattended in a Chromium launched for it, with no DevTools client attached (Playwright's per-request instrumentation cost a bare fetch loop ~40% of its rate), with a fresh profile on disk unless said otherwise.");
lines.push("- Contender and baselines run in the same page, alternating, in rounds; a ratio is the median of the per-round ratios. Warm-up runs of every contender come first and are not counted.");
lines.push("- A drain starts from a backlog written in one transaction into a database the library created (records shaped like saveWeight's, checked), and runs from `start()` until the stats record counts all completed (read by the harness every 200 ms, every 10 ms after 90%; not through `stats()`, which counts pending events through an index: see the stats rows).");
lines.push("- Storage floor: hand-written JS making the IndexedDB requests our processor makes (src/store/queue.rs claim_in/record_in: same transactions, reads and writes), with the same upload pattern, and nothing else.");
lines.push("- Diagnostics: `node bench/idb-requests.mjs` counts IndexedDB requests per event, `node bench/cpu-cost.mjs` gives CPU ms per event by process, `node bench/profile-drain.mjs` profiles the page, `node bench/size-breakdown.mjs` writes bench/size-breakdown.txt (twiggy).");
if (results.warning) lines.unshift(`**WARNING: ${results.warning}**`, "");
results.table = lines.join("\n");
console.log("\n" + results.table + "\n");

const suffix = quick ? ".quick" : "";
writeFileSync(join(root, "bench", `results${suffix}.json`), JSON.stringify(results, null, 2) + "\n");
if (!quick) {
  writeFileSync(join(root, "bench", "results.md"), results.table + "\n");
  writeFileSync(join(root, "bench", "chart.svg"), chart(results));
}
log(`wrote bench/results${suffix}.json${quick ? " (a quick run: the tables are in its `table`)" : ", bench/results.md and bench/chart.svg"}`);

/** A small SVG: save p50 per contender, drain rates, scale, size against budget. */
function chart(r) {
  const W = 760, rowH = 22, left = 280, barW = 400;
  const b = r.batchDrain;
  const groups = [
    { title: "save p50 (ms, lower is better)", rows: ["saveWeight", "jsBaseline", "workbox"].map((k) => [k, r.saveSequential[k].p50]) },
    { title: "drain, one request per event (events/s; bare fetch loop for scale)", rows: r.drain.flatMap((d) => [[`outbox, ${d.maxConcurrent} in flight, ${d.serverLatencyMs} ms`, d.eventsPerSec], [`bare fetch, ${d.maxConcurrent} in flight, ${d.serverLatencyMs} ms`, d.ceilingPerSec]]) },
    { title: `drain of ${b.n} through batchEndpoint (events/s)`, rows: [["outbox, batches", b.eventsPerSec], ["bare batch loop", b.bareBatchEventsPerSec], ["bare fetch, one per POST", b.bareRequestsPerSec]] },
    { title: "stats() p50 (ms) by events stored", rows: r.scale.map((s) => [`${s.size} events`, s.stats.p50]) },
    { title: `size, gzip (KB; budget ${BUDGET_GZIP_KB})`, rows: [["wasm", r.size.wasm.gzip / 1024], ["JS", r.size.glue.gzip / 1024], ["total", r.size.total.gzip / 1024], ["budget", BUDGET_GZIP_KB]] },
  ];
  let y = 30;
  let body = "";
  for (const g of groups) {
    const max = Math.max(...g.rows.map(([, v]) => v)) || 1;
    body += `<text x="10" y="${y}" font-weight="600">${g.title}</text>`;
    y += 8;
    for (const [label, v] of g.rows) {
      const w = Math.max(1, (v / max) * barW);
      const baseline = /^(bare |budget|jsBaseline|workbox)/.test(label);
      body += `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${label}</text><rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${baseline ? "#9aa5b1" : "#0d9488"}" rx="3"/><text x="${left + w + 6}" y="${y + 15}">${v < 10 ? v.toFixed(2) : v.toFixed(0)}</text>`;
      y += rowH;
    }
    y += 18;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" font-family="system-ui, sans-serif" font-size="12" fill="#1f2933"><rect width="100%" height="100%" fill="#fff"/>${body}</svg>\n`;
}
