// Where a drain's time goes in the page: `node bench/profile-drain.mjs [maxConcurrent]` (after
// `npm run build`). Saves 1,000 events, then profiles (CDP Profiler) only their upload to the dev
// API, and prints the renderer's self time by function: native calls, our JS, wasm in total.
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, startServer } from "../tests/e2e/helpers.mjs";

const maxConcurrent = Number(process.argv[2] || 3);
const N = 1000;
const server = await startServer({ env: { BENCH: "1", QUIET: "1" } });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/bench/page.html`);
  await page.waitForFunction(() => window.bench, null, { timeout: 30000 });
  await page.evaluate((c) => window.bench.drain({ n: 300, maxConcurrent: c }), maxConcurrent); // warm-up

  // The backlog, not profiled.
  await page.evaluate(async ([n, c]) => {
    const { Outbox } = await import("/pkg/progress_outbox.js");
    const user = `profile-${Math.random().toString(36).slice(2)}`;
    const res = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId: user, ttlMs: 3_600_000 }) });
    const { token } = await res.json();
    window.profiled = { user, outbox: await Outbox.open({ endpoint: "/api/v1/progress", dbName: user, token, maxConcurrent: c, log: "off" }) };
    for (let i = 0; i < n; i++) await window.profiled.outbox.saveWeight(70 + i / 100, { userId: user });
  }, [N, maxConcurrent]);

  const cdp = await context.newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
  await cdp.send("Profiler.start");
  const eventsPerSec = await page.evaluate(async (n) => {
    const { outbox, user } = window.profiled;
    const t0 = performance.now();
    outbox.start(user);
    while ((await outbox.stats()).completed < n) await new Promise((r) => setTimeout(r, 25));
    outbox.close();
    return n / ((performance.now() - t0) / 1000);
  }, N);
  const { profile } = await cdp.send("Profiler.stop");

  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    const key = `${functionName || "(anonymous)"} ${url.split("/").pop()}${url ? `:${lineNumber}` : ""}`;
    self.set(key, (self.get(key) || 0) + profile.timeDeltas[i]);
    total += profile.timeDeltas[i];
  });
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const wasm = [...self].filter(([k]) => k.includes(".wasm")).reduce((a, [, v]) => a + v, 0);
  console.log(`drain of ${N} events, maxConcurrent ${maxConcurrent}: ${eventsPerSec.toFixed(0)} events/s; profiled ${(total / 1000).toFixed(0)} ms`);
  console.log(`all wasm functions: ${pct(wasm)}`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${pct(v)} ${(v / 1000).toFixed(1).padStart(8)} ms  ${k}`);
} finally {
  await browser.close();
  await server.stop();
}
