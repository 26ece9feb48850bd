// `npm run bench`: headless Chromium (playwright-core) against the dev API on loopback.
// Writes bench/results.json and bench/chart.svg and prints a table. Figures that depend on the
// machine are reported next to a baseline measured in the same run, as ratios.
import { writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, root, startServer } from "../tests/e2e/helpers.mjs";
import { packageSizes } from "../scripts/size.mjs";

const quick = process.argv.includes("--quick"); // smaller counts, for a smoke run
const N = quick ? 200 : 1000;
const log = (...a) => console.log("[bench]", ...a);

const server = await startServer({ env: { BENCH: "1", QUIET: "1" } });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
const results = { date: new Date().toISOString(), machine: { chromium: browser.version(), node: process.version }, quick };

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

async function benchPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("[page error]", e.message));
  await page.goto(`${server.url}/bench/page.html`);
  await page.waitForFunction(() => window.bench, null, { timeout: 30000 });
  return { page, context };
}

try {
  // 1. Save cost
  let { page, context } = await benchPage();
  log(`save cost: ${N} sequential saves per contender, interleaved`);
  results.saveSequential = await page.evaluate((n) => window.bench.saveCost({ n, concurrency: 1, rounds: 10 }), N);
  log(`save cost: ${N} saves 10 at a time`);
  results.saveConcurrent = await page.evaluate((n) => window.bench.saveCost({ n, concurrency: 10, rounds: 10 }), N);
  await context.close();

  // 2. Drain and latency
  results.drain = [];
  for (const latencyMs of [0, 20]) {
    await server.faults(latencyMs ? { mode: "slow", delayMs: latencyMs } : { mode: "healthy" });
    for (const maxConcurrent of [1, 3]) {
      ({ page, context } = await benchPage());
      // Baseline in the same conditions: a bare fetch loop, as many in flight, nothing stored.
      log(`network ceiling: ${N} bare POSTs, ${maxConcurrent} in flight, ${latencyMs} ms server latency`);
      const raw = await page.evaluate(([n, k]) => window.bench.rawFetch({ n, inFlight: k }), [N, maxConcurrent]);
      log(`server alone: ${N} POSTs from a Node client, ${maxConcurrent} in flight`);
      const alone = await serverAlone(N, maxConcurrent);
      log(`drain: ${N} events, maxConcurrent ${maxConcurrent}, ${latencyMs} ms server latency`);
      const r = await page.evaluate(([n, c]) => window.bench.drain({ n, maxConcurrent: c }), [N, maxConcurrent]);
      results.drain.push({ ...r, serverLatencyMs: latencyMs, ceilingPerSec: raw.eventsPerSec, serverAlonePerSec: alone.eventsPerSec, ofCeiling: r.eventsPerSec / raw.eventsPerSec });
      await context.close();
    }
  }
  await server.faults({ mode: "healthy" });
  ({ page, context } = await benchPage());
  log("save -> server receipt latency, wake-on-save");
  results.latency = await page.evaluate((n) => window.bench.latency({ n }), quick ? 30 : 100);
  await context.close();

  // 3. Scale
  results.scale = [];
  for (const size of quick ? [1000, 10000] : [1000, 10000, 100000]) {
    ({ page, context } = await benchPage());
    log(`scale: ${size} events stored`);
    results.scale.push(await page.evaluate((size) => window.bench.scale({ size }), size));
    await context.close();
  }

  // 4. Start-up and size
  const startups = [];
  for (let i = 0; i < 7; i++) {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${server.url}/bench/startup.html`);
    startups.push(await p.waitForFunction(() => window.__startup, null, { timeout: 30000 }).then((h) => h.jsonValue()));
    await ctx.close();
  }
  const med = (k) => startups.map((s) => s[k]).sort((a, b) => a - b)[Math.floor(startups.length / 2)];
  results.startup = { initMs: med("initMs"), openMs: med("openMs"), totalMs: med("totalMs"), runs: startups.length };
  results.size = packageSizes(join(root, "pkg"));
} finally {
  await browser.close();
  await server.stop();
}

// ---------- targets (ratios, so they hold on any machine) ----------
const seq = results.saveSequential;
const byKey = (arr, f) => arr.find(f);
const scaleOf = (size) => results.scale.find((s) => s.size === size);
const big = scaleOf(quick ? 10000 : 100000);
const small = scaleOf(1000);
const d3 = byKey(results.drain, (d) => d.maxConcurrent === 3 && d.serverLatencyMs === 0);
results.targets = [
  { what: "saveWeight p50 / JS baseline p50", value: seq.saveWeight.p50 / seq.jsBaseline.p50, target: "<= 1.2", ok: seq.saveWeight.p50 / seq.jsBaseline.p50 <= 1.2 },
  { what: "saveWeight throughput / workbox throughput", value: seq.saveWeight.opsPerSec / seq.workbox.opsPerSec, target: ">= 2", ok: seq.saveWeight.opsPerSec / seq.workbox.opsPerSec >= 2 },
  { what: `stats() p50, ${big.size / 1000}k / 1k events`, value: big.stats.p50 / small.stats.p50, target: "<= 1.5", ok: big.stats.p50 / small.stats.p50 <= 1.5 },
  { what: `claim+upload pass p50, ${big.size / 1000}k / 1k events`, value: big.pass.p50 / small.pass.p50, target: "<= 1.5", ok: big.pass.p50 / small.pass.p50 <= 1.5 },
  { what: "save -> server p50 (ms, loopback)", value: results.latency.p50, target: "<= 50", ok: results.latency.p50 <= 50 },
  { what: "drain events/s, maxConcurrent 3, 0 ms latency", value: d3.eventsPerSec, target: ">= 500", ok: d3.eventsPerSec >= 500 },
  { what: "drain / bare fetch loop (same server, 3 in flight)", value: d3.ofCeiling, target: "(context)", ok: true },
  { what: "wasm + JS glue, gzip (KB)", value: results.size.total.gzip / 1024, target: "<= 60", ok: results.size.total.gzip / 1024 <= 60 },
];

// ---------- report ----------
const f = (x, d = 2) => (typeof x === "number" ? x.toFixed(d) : String(x));
const lines = [];
lines.push(`| save (ms) | p50 sequential | p95 sequential | saves/s sequential | p50 10 concurrent | p95 10 concurrent | saves/s 10 concurrent | p50 / JS p50 | saves/s / JS saves/s |`);
lines.push(`|---|---|---|---|---|---|---|---|---|`);
for (const k of ["saveWeight", "jsBaseline", "workbox"]) {
  const a = results.saveSequential[k], c = results.saveConcurrent[k];
  lines.push(`| ${k} | ${f(a.p50, 3)} | ${f(a.p95, 3)} | ${f(a.opsPerSec, 0)} | ${f(c.p50, 3)} | ${f(c.p95, 3)} | ${f(c.opsPerSec, 0)} | ${f(a.p50 / seq.jsBaseline.p50)}x | ${f(a.opsPerSec / seq.jsBaseline.opsPerSec)}x |`);
}
lines.push("");
lines.push(`| drain ${results.drain[0].n} events | server latency | events/s | bare fetch loop in Chromium, same in flight (events/s) | share of that ceiling | the server alone, Node client (requests/s) |`);
lines.push(`|---|---|---|---|---|---|`);
for (const d of results.drain) lines.push(`| maxConcurrent ${d.maxConcurrent} | ${d.serverLatencyMs} ms | ${f(d.eventsPerSec, 0)} | ${f(d.ceilingPerSec, 0)} | ${f(100 * d.ofCeiling, 0)}% | ${f(d.serverAlonePerSec, 0)} |`);
lines.push("");
lines.push(`| events stored | stats() p50 ms | one-batch pass p50 ms |`);
lines.push(`|---|---|---|`);
for (const s of results.scale) lines.push(`| ${s.size} | ${f(s.stats.p50, 3)} | ${f(s.pass.p50, 3)} |`);
lines.push("");
lines.push(`save -> server receipt: p50 ${f(results.latency.p50, 0)} ms, p95 ${f(results.latency.p95, 0)} ms (n=${results.latency.n}); cold init() ${f(results.startup.initMs, 1)} ms + Outbox.open ${f(results.startup.openMs, 1)} ms`);
lines.push("");
lines.push(`| bytes | raw | gzip | brotli |`);
lines.push(`|---|---|---|---|`);
for (const k of ["wasm", "glue", "total"]) {
  const s = results.size[k];
  lines.push(`| ${k} | ${f(s.raw / 1024, 1)} KB | ${f(s.gzip / 1024, 1)} KB | ${f(s.brotli / 1024, 1)} KB |`);
}
lines.push("");
lines.push(`| target | measured | goal | met |`);
lines.push(`|---|---|---|---|`);
for (const t of results.targets) lines.push(`| ${t.what} | ${f(t.value)} | ${t.target} | ${t.ok ? "yes" : "**no**"} |`);
results.table = lines.join("\n");
console.log("\n" + results.table + "\n");

writeFileSync(join(root, "bench", quick ? "results.quick.json" : "results.json"), JSON.stringify(results, null, 2) + "\n");
if (!quick) writeFileSync(join(root, "bench", "chart.svg"), chart(results));
log(`wrote bench/${quick ? "results.quick.json" : "results.json and bench/chart.svg"}`);

/** A small SVG: save p50 per contender, drain rates, scale ratios, size against budget. */
function chart(r) {
  const W = 760, rowH = 22, left = 250, barW = 420;
  const groups = [
    { title: "save p50 (ms, lower is better)", rows: ["saveWeight", "jsBaseline", "workbox"].map((k) => [k, r.saveSequential[k].p50]) },
    { title: "drain (events/s, higher is better; bare fetch loop for scale)", rows: r.drain.flatMap((d) => [[`outbox, ${d.maxConcurrent} in flight, ${d.serverLatencyMs} ms`, d.eventsPerSec], [`bare fetch, ${d.maxConcurrent} in flight, ${d.serverLatencyMs} ms`, d.ceilingPerSec]]) },
    { title: "stats() p50 (ms) by events stored", rows: r.scale.map((s) => [`${s.size} events`, s.stats.p50]) },
    { title: "size, gzip (KB; budget 60)", rows: [["wasm", r.size.wasm.gzip / 1024], ["JS glue", r.size.glue.gzip / 1024], ["total", r.size.total.gzip / 1024], ["budget", 60]] },
  ];
  let y = 30;
  let body = "";
  for (const g of groups) {
    const max = Math.max(...g.rows.map(([, v]) => v)) || 1;
    body += `<text x="10" y="${y}" font-weight="600">${g.title}</text>`;
    y += 8;
    for (const [label, v] of g.rows) {
      const w = Math.max(1, (v / max) * barW);
      const baseline = /^(bare fetch|budget|jsBaseline|workbox)/.test(label);
      body += `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${label}</text><rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${baseline ? "#9aa5b1" : "#0d9488"}" rx="3"/><text x="${left + w + 6}" y="${y + 15}">${v < 10 ? v.toFixed(2) : v.toFixed(0)}</text>`;
      y += rowH;
    }
    y += 18;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" font-family="system-ui, sans-serif" font-size="12" fill="#1f2933"><rect width="100%" height="100%" fill="#fff"/>${body}</svg>\n`;
}
