// Where a drain's time goes in the page (after `npm run build`):
//
//   node bench/profile-drain.mjs [maxConcurrent=3] [single|batch] [events] [--memory]
//
// Writes the backlog (not profiled), then profiles (CDP Profiler, 200 µs sampling) only its upload to
// the dev API, and prints the renderer main thread's self time by function (native calls, our JS,
// wasm functions: `wasm-function[N]` unless pkg/ holds a wasm with a name section, e.g. from
// `wasm-pack build --profiling`), and in total per kind. `batch` drains through batchEndpoint (maxBatchEvents 100). Like `npm run bench`,
// the page runs in a fresh profile on disk unless --memory.
import { rmSync } from "node:fs";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, startServer, tempDir } from "../tests/e2e/helpers.mjs";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const maxConcurrent = Number(args[0] || 3);
const batch = args[1] === "batch";
const N = Number(args[2] || (batch ? 10000 : 1000));
const memory = process.argv.includes("--memory");
const options = { maxConcurrent, log: "off", ...(batch ? { batchEndpoint: "/api/v1/progress/batch", maxBatchEvents: 100 } : {}) };

const server = await startServer({ env: { BENCH: "1", QUIET: "1" } });
const profileDir = memory ? null : tempDir("profile");
const browser = memory ? await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }) : null;
const context = memory ? await browser.newContext() : await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
try {
  const page = context.pages()[0] || (await context.newPage());
  await page.goto(`${server.url}/bench/page.html`);
  await page.waitForFunction(() => window.bench, null, { timeout: 30000 });
  await page.evaluate((c) => window.bench.drain({ n: 300, maxConcurrent: c }), maxConcurrent); // warm-up

  // The backlog (bench.js prepareDrain), not profiled.
  await page.evaluate(async ([n, options]) => (window.prepared = await window.bench.prepareDrain({ n, maxConcurrent: options.maxConcurrent, options }), null), [N, options]);

  const cdp = await context.newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
  await cdp.send("Profiler.start");
  const { eventsPerSec } = await page.evaluate(() => window.bench.runDrain(window.prepared));
  const { profile } = await cdp.send("Profiler.stop");

  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const kinds = new Map();
  let total = 0;
  const kindOf = ({ functionName, url }) => {
    if (url.endsWith(".wasm") || url.startsWith("wasm://")) return "wasm functions";
    if (functionName === "(idle)") return "idle";
    if (functionName === "(garbage collector)") return "garbage collector";
    if (functionName === "(program)") return "(program): native work outside JS (IPC, promise and task plumbing)";
    if (!url) return `native: ${/^(put|get|getAll|add|count|openCursor|openKeyCursor|transaction|commit|index|objectStore|delete)$/.test(functionName) ? "IndexedDB" : functionName === "fetch" ? "fetch" : "other"}`;
    if (url.includes("/pkg/")) return "our JS glue (wasm-bindgen)";
    return `JS ${url.split("/").pop()}`;
  };
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id).callFrame;
    const { functionName, url, lineNumber } = frame;
    const key = `${functionName || "(anonymous)"} ${url.split("/").pop()}${url ? `:${lineNumber}` : ""}`;
    const dt = profile.timeDeltas[i];
    self.set(key, (self.get(key) || 0) + dt);
    const k = kindOf(frame);
    kinds.set(k, (kinds.get(k) || 0) + dt);
    total += dt;
  });
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  console.log(`drain of ${N} events (${batch ? "batchEndpoint, maxBatchEvents 100" : "one request per event"}), maxConcurrent ${maxConcurrent}, IndexedDB ${memory ? "in memory" : "on disk"}: ${eventsPerSec.toFixed(0)} events/s; profiled ${(total / 1000).toFixed(0)} ms of the renderer main thread`);
  console.log("by kind:");
  for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`${pct(v)} ${(v / 1000).toFixed(1).padStart(8)} ms  ${k}`);
  console.log("top functions (self time):");
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${pct(v)} ${(v / 1000).toFixed(1).padStart(8)} ms  ${k}`);
} finally {
  await context.close();
  if (browser) await browser.close();
  await server.stop();
  rmSync(server.dataDir, { recursive: true, force: true });
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
}
