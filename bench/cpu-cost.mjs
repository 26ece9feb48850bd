// CPU time per event, by process: a figure other work on the machine changes far less than it
// changes rates (wall-clock events/s).
//
//   node bench/cpu-cost.mjs [events=1000] [batchEvents=5000]     (after `npm run build`; Linux)
//
// Each contender runs in an unattended bench page (bench/session.mjs: no DevTools client attached)
// after a pause; this reads utime+stime (/proc/<pid>/stat) of every process of that Chromium
// (browser: IPC and the IndexedDB backend; renderer: the page and our wasm; network service) and of
// the dev API during the pause before and right after the contender, and prints CPU ms per event.
// Contenders: a bare fetch loop (3 in flight); the outbox draining one request per event
// (maxConcurrent 3); hand-written JS making our IndexedDB requests (bench.js jsOutboxDrain); a bare
// batch loop (100 per POST); the outbox through batchEndpoint (maxBatchEvents 100); the same JS
// in batches. Backlogs are written before the pause and not counted (the JS floor writes its own
// inside its call: about 0.3 ms per event of it is that).
import { readdirSync, readFileSync } from "node:fs";
import { startServer } from "../tests/e2e/helpers.mjs";
import { unattended } from "./session.mjs";

const N = Number(process.argv[2] || 1000);
const NB = Number(process.argv[3] || 5000);
const TICK_MS = 1000 / 100; // USER_HZ

const server = await startServer({ env: { BENCH: "1", QUIET: "1" } });

/** CPU ms so far of the dev API and of every process in the tree under `rootPid`, by kind. */
function cpu(rootPid) {
  const all = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      // Chromium's children rewrite their title: the command line is one string, not NUL-separated args.
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      all.set(Number(pid), { ppid: Number(fields[1]), cmd, ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS }); // utime, stime
    } catch {
      continue;
    }
  }
  const tree = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of all) if (!tree.has(pid) && tree.has(p.ppid)) (tree.add(pid), (grew = true));
  }
  const by = new Map();
  for (const [pid, p] of all) {
    let kind = null;
    if (pid === server.proc.pid) kind = "dev API (node)";
    else if (tree.has(pid)) {
      const type = /--type=(\S+)/.exec(p.cmd)?.[1];
      kind = !type ? "browser (IPC, IndexedDB backend)" : type === "renderer" ? "renderer (page, wasm)" : /NetworkService/.test(p.cmd) ? "network service" : "other";
    }
    if (kind) by.set(kind, (by.get(kind) || 0) + p.ms);
  }
  return by;
}

const contenders = [
  ["bare fetch loop, 3 in flight", N, [["rawFetch", { n: N, inFlight: 3 }]]],
  ["outbox, one request per event, maxConcurrent 3", N, [["prepareDrain", { n: N, maxConcurrent: 3 }]], [["runDrain"]]],
  ["hand-written JS making our IndexedDB requests, one per event (incl. writing its backlog)", N, [["jsOutboxDrain", { n: N, inFlight: 3 }]]],
  ["bare batch loop, 100 per POST, 3 in flight", NB, [["rawBatch", { n: NB, size: 100, inFlight: 3 }]]],
  ["outbox, batchEndpoint, maxBatchEvents 100", NB, [["prepareDrain", { n: NB, maxConcurrent: 3, options: { batchEndpoint: "/api/v1/progress/batch", maxBatchEvents: 100 } }]], [["runDrain"]]],
  ["hand-written JS making our IndexedDB requests, batches of 100 (incl. writing its backlog)", NB, [["jsOutboxDrain", { n: NB, inFlight: 3, batchSize: 100 }]]],
];
const kinds = ["renderer (page, wasm)", "browser (IPC, IndexedDB backend)", "network service", "dev API (node)", "other"];
console.log(`| CPU ms per event | ${kinds.join(" | ")} | total | events/s |`);
console.log(`|---|${kinds.map(() => "---|").join("")}---|---|`);
try {
  for (const [label, n, setup, measured = setup] of contenders) {
    // Warm-up (connections, JIT, wasm tiers): the contender itself once, smaller; not counted.
    const warm = setup[0][0] === "prepareDrain" ? (setup[0][1].options ? [["drainBatch", { n: 500, maxConcurrent: 3, maxBatchEvents: 100 }]] : [["drain", { n: 200, maxConcurrent: 3 }]]) : [[setup[0][0], { ...setup[0][1], n: Math.min(500, n) }]];
    const calls = [["rawFetch", { n: 1000, inFlight: 3 }], ...warm, ...(measured === setup ? [] : setup), ["sleep", 1500], ...measured];
    const pause = calls.findIndex(([name]) => name === "sleep");
    let before, after, rate;
    await unattended(server.url, calls, {
      onResult(i, value, pid) {
        if (i === pause) before = cpu(pid);
        if (i === calls.length - 1) {
          after = cpu(pid);
          rate = value.eventsPerSec;
        }
      },
    });
    const per = (k) => ((after.get(k) || 0) - (before.get(k) || 0)) / n;
    const total = kinds.reduce((a, k) => a + per(k), 0);
    console.log(`| ${label} | ${kinds.map((k) => per(k).toFixed(3)).join(" | ")} | ${total.toFixed(3)} | ${rate.toFixed(0)} |`);
  }
} finally {
  await server.stop();
}
