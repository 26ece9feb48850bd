// Consumer apps: the packed tarball as npm users get it, in Vite (build and dev server), webpack 5,
// esbuild and a plain page with an import map (plus a module service worker, and the README's
// Background Sync worker stopped and started again by the browser), each loaded in
// headless Chromium against the dev API: log in, open the outbox with a token function,
// start(user), saveWeight(72.5), see the record reach the server, read stats().completed === 1.
//
// Run by `npm test` (after the e2e step) or `npm run test:consumers`; needs `npm run build` first
// (pkg/): it packs pkg/ with scripts/pack.mjs and installs that tarball with `npm install`, never
// the source tree. Each consumer's tools are installed from its package.json (pinned versions,
// its package-lock.json) when its node_modules is missing or was installed from another
// package.json/lock; the tarball is reinstalled on every run. Prints each consumer's install and
// build time and the bytes its page loads, and writes them to test-results/consumers.json.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { pack, root } from "../../scripts/pack.mjs";
import { createDevServer } from "../../www/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const MIME_WARNING = "`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with `application/wasm` MIME type";

/**
 * Each consumer: its folder, the commands that build it (timed), the folder served at "/", and
 * the pages loaded. A page's `wasm` says which wasm URL it must fetch; `octet` serves .wasm as
 * application/octet-stream (the glue warns and falls back to WebAssembly.instantiate); a page
 * with `rejects` is served with no .wasm at all and Outbox.open must reject with that message.
 */
const CONSUMERS = [
  {
    name: "vite", tool: "vite", checks: [["npm", "run", "typecheck"]], build: [["npm", "run", "build"]], serve: "dist",
    pages: [{ path: "/", user: "consumer-vite", wasm: /\/assets\/progress_outbox_bg-[\w-]+\.wasm$/ }],
  },
  {
    name: "vite (dev server)", dir: "vite", tool: "vite", dev: true,
    pages: [{ path: "/", user: "consumer-vite" }],
  },
  {
    name: "webpack", tool: "webpack", build: [["npm", "run", "build"]], serve: ".",
    pages: [{ path: "/index.html", user: "consumer-webpack", wasm: /\/dist\/[0-9a-f]+\.wasm$/ }],
  },
  {
    name: "esbuild", tool: "esbuild", build: [["npm", "run", "build"]], serve: ".",
    pages: [
      { path: "/index.html", user: "consumer-esbuild", wasm: /\/dist\/progress_outbox_bg\.wasm$/ },
      { path: "/explicit.html", user: "consumer-esbuild-explicit", wasm: /\/dist\/progress_outbox_bg-\w+\.wasm$/ },
    ],
  },
  {
    name: "plain", tool: null, serve: ".",
    pages: [
      { path: "/index.html", user: "consumer-plain", wasm: /\/node_modules\/progress-outbox\/progress_outbox_bg\.wasm$/ },
      { path: "/octet/index.html?user=consumer-plain-octet", user: "consumer-plain-octet", octet: true },
      { path: "/nowasm/index.html?user=consumer-plain-nowasm", user: "consumer-plain-nowasm", rejects: /^Error: failed to fetch Wasm: 404 Not Found fetching 'http:\/\/[^']+\/nowasm\/node_modules\/progress-outbox\/progress_outbox_bg\.wasm'$/ },
      { path: "/sw.html", user: "consumer-plain-sw", worker: true },
    ],
  },
];

let tarball;
let api; // { origin, server, records() }
let browser;
const results = [];

function run(cmd, args, cwd, { env = {}, timeoutMs = 300000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const started = Date.now();
    const proc = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout.on("data", (d) => { out += d; });
    proc.stderr.on("data", (d) => { out += d; });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.on("error", (e) => { clearTimeout(timer); reject(e); });
    proc.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise({ ms: Date.now() - started, out });
      else reject(new Error(`${cmd} ${args.join(" ")} in ${cwd} failed (${signal || code}):\n${out.slice(-4000)}`));
    });
  });
}

const NPM_FLAGS = ["--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"];

/** Installs the consumer's tools when needed, then the tarball. Returns the time each took. */
async function install(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const timings = { toolsMs: 0, tarballMs: 0 };
  if (Object.keys({ ...manifest.dependencies, ...manifest.devDependencies }).length) {
    const stampFile = join(dir, "node_modules", ".consumer-stamp");
    const stamp = () => createHash("sha256").update(readFileSync(join(dir, "package.json"))).update(existsSync(join(dir, "package-lock.json")) ? readFileSync(join(dir, "package-lock.json")) : "").digest("hex");
    if (!existsSync(stampFile) || readFileSync(stampFile, "utf8") !== stamp()) {
      timings.toolsMs = (await run("npm", ["install", ...NPM_FLAGS], dir)).ms;
      writeFileSync(stampFile, stamp()); // after the install: it may have written the lock
    }
  }
  rmSync(join(dir, "node_modules", "progress-outbox"), { recursive: true, force: true });
  timings.tarballMs = (await run("npm", ["install", "--no-save", ...NPM_FLAGS, tarball], dir)).ms;
  const installed = JSON.parse(readFileSync(join(dir, "node_modules", "progress-outbox", "package.json"), "utf8"));
  assert.equal(installed.name, "progress-outbox");
  return { ...timings, version: installed.version };
}

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml",
};

/**
 * Serves `dir` at "/", again under "/octet/" with .wasm as application/octet-stream, and under
 * "/nowasm/" with every .wasm a 404; /api/* goes to the dev API.
 */
function serve(dir) {
  const base = normalize(dir);
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname.startsWith("/api/")) {
      const upstream = request(api.origin + req.url, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
      return;
    }
    let rel = decodeURIComponent(url.pathname);
    const variant = /^\/(octet|nowasm)\//.exec(rel)?.[1];
    if (variant) rel = rel.slice(variant.length + 1);
    if (rel.endsWith("/")) rel += "index.html";
    const file = normalize(join(base, rel));
    const missing = variant === "nowasm" && file.endsWith(".wasm");
    if (missing || !file.startsWith(base) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { "Content-Type": "text/plain" });
      return res.end("not found");
    }
    const type = variant === "octet" && file.endsWith(".wasm") ? "application/octet-stream" : TYPES[extname(file)] || "application/octet-stream";
    res.writeHead(200, { "Content-Type": type, "Cache-Control": "no-store" });
    createReadStream(file).pipe(res);
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((c) => { server.closeAllConnections(); server.close(c); }) })));
}

/**
 * Starts `vite` (the dev server) in the consumer folder; resolves with its origin, read from its
 * output. Vite picks the port (its first free one from 5173 up, found by binding it), so no port is
 * freed here and taken by another process before vite binds it.
 */
async function viteDev(dir) {
  const proc = spawn(process.execPath, [join(dir, "node_modules", "vite", "bin", "vite.js"), "--host", "127.0.0.1", "--clearScreen", "false"], {
    cwd: dir, env: { ...process.env, API_ORIGIN: api.origin }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const origin = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`vite did not start:\n${out}`)), 60000);
    const seen = (d) => {
      out += d;
      // eslint-disable-next-line no-control-regex
      const m = /Local:\s+(http:\/\/[\d.]+:\d+)/.exec(out.replace(/\x1b\[[0-9;]*m/g, ""));
      if (m) { clearTimeout(timer); resolvePromise(m[1]); }
    };
    proc.stdout.on("data", seen);
    proc.stderr.on("data", seen);
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`vite exited (${code}):\n${out}`)); });
  });
  return {
    origin,
    log: () => out,
    close: () => new Promise((r) => {
      if (proc.exitCode !== null) return r();
      proc.removeAllListeners("exit");
      proc.once("exit", r);
      proc.kill("SIGTERM");
    }),
  };
}

function within(ms, promise, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); })]).finally(() => clearTimeout(timer));
}

async function until(what, fn, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

/** Loads one page of a consumer in a fresh browser context and checks the whole flow. */
async function checkPage(origin, page) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const consoleLines = [];
  const loaded = []; // { url, type, bytes }
  tab.on("console", (m) => {
    // The browser's own request for /favicon.ico (none of these apps has one) is not the app's.
    if (!/\/favicon\.ico$/.test(m.location()?.url || "")) consoleLines.push(`${m.type()}: ${m.text()}`);
  });
  tab.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  tab.on("response", async (r) => {
    const url = r.url();
    if (!/\.(m?js|ts|wasm)(\?|$)/.test(new URL(url).pathname) || r.status() !== 200) return;
    try {
      const body = await r.body();
      loaded.push({ url, wasm: new URL(url).pathname.endsWith(".wasm"), bytes: body.length, gzip: gzipSync(body, { level: 9 }).length });
    } catch { /* a response whose body is gone (navigation) */ }
  });
  const started = Date.now();
  try {
    await tab.goto(origin + page.path);
    if (page.rejects) {
      const message = await within(30000, tab.evaluate(() => window.consumer.then(() => "resolved", (e) => String(e))), `${page.path}: open`);
      assert.match(message, page.rejects);
      return { path: page.path, user: page.user, rejected: message };
    }
    const entry = await within(30000, tab.evaluate(async () => (await window.consumer).entry), `${page.path}: open + saveWeight`).catch((e) => {
      throw new Error(`${e.message}\nconsole:\n${consoleLines.join("\n")}`);
    });
    assert.equal(entry.userId, page.user);
    assert.equal(entry.quantity, 72.5);
    const record = await until(`${page.path}: the record on the dev API`, async () => (await api.records()).find((r) => r.localId === entry.id));
    const uploadedMs = Date.now() - started;
    assert.equal(record.userId, page.user);
    assert.equal(record.quantity, 72.5);
    const stats = await until(`${page.path}: stats().completed === 1`, async () => {
      const s = await within(10000, tab.evaluate(async () => (await window.consumer).outbox.stats()), "stats()");
      return s.completed === 1 ? s : null;
    }, 10000);
    assert.equal(stats.pending, 0);
    const warned = consoleLines.some((l) => l.includes(MIME_WARNING));
    if (page.octet) assert.ok(warned, `served as application/octet-stream, the glue should warn and fall back:\n${consoleLines.join("\n")}`);
    else assert.ok(!warned, `the wasm was served as application/wasm, yet:\n${consoleLines.join("\n")}`);
    const wasmLoads = loaded.filter((l) => l.wasm);
    if (page.wasm) assert.ok(wasmLoads.some((l) => page.wasm.test(new URL(l.url).pathname)), `expected a wasm matching ${page.wasm}, loaded: ${wasmLoads.map((l) => l.url).join(", ") || "none"}`);
    if (!page.worker) assert.equal(wasmLoads.length, 1, `one wasm load, got ${wasmLoads.map((l) => l.url).join(", ")}`);
    const errors = consoleLines.filter((l) => /^(error|pageerror):/.test(l));
    assert.deepEqual(errors, [], "console errors");
    const sum = (list, key) => list.reduce((n, l) => n + l[key], 0);
    const js = loaded.filter((l) => !l.wasm);
    return {
      path: page.path, user: page.user, uploadedMs, backendId: record.id,
      jsFiles: js.length, jsBytes: sum(js, "bytes"), jsGzip: sum(js, "gzip"), wasmBytes: sum(wasmLoads, "bytes"), wasmGzip: sum(wasmLoads, "gzip"),
    };
  } finally {
    await context.close();
  }
}

before(async () => {
  const packed = await pack({ quiet: true });
  tarball = packed.tarball;
  const dataDir = mkdtempSync(join(tmpdir(), "outbox-consumers-"));
  const dev = createDevServer({ dataDir, quiet: true });
  await new Promise((r) => dev.server.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${dev.server.address().port}`;
  api = {
    origin, dataDir, server: dev.server,
    records: async () => (await (await fetch(`${origin}/api/v1/progress?all=1`)).json()),
  };
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  if (api) {
    api.server.closeAllConnections();
    await new Promise((r) => api.server.close(r));
    rmSync(api.dataDir, { recursive: true, force: true });
  }
  if (!results.length) return;
  const kb = (n) => (n / 1024).toFixed(1).padStart(6) + " KB";
  console.log("\nconsumer            install (tools + tarball)   build     JS loaded (gzip)           wasm loaded (gzip)");
  for (const r of results) {
    const p = r.pages[0];
    const install = r.install ? `${((r.install.toolsMs + r.install.tarballMs) / 1000).toFixed(1)} s (${(r.install.toolsMs / 1000).toFixed(1)} + ${(r.install.tarballMs / 1000).toFixed(1)})` : "-";
    const build = r.buildMs == null ? "-" : `${(r.buildMs / 1000).toFixed(2)} s`;
    console.log(`${r.name.padEnd(20)}${install.padEnd(28)}${build.padEnd(10)}${kb(p.jsBytes)} (${kb(p.jsGzip)}, ${p.jsFiles} files)  ${kb(p.wasmBytes)} (${kb(p.wasmGzip)})`);
  }
  mkdirSync(join(root, "test-results"), { recursive: true });
  const file = join(root, "test-results", "consumers.json");
  writeFileSync(file, JSON.stringify({ tarball: tarball && tarball.slice(root.length + 1), when: new Date().toISOString(), consumers: results }, null, 2) + "\n");
  console.log(`written to ${file.slice(root.length + 1)}`);
});

for (const consumer of CONSUMERS) {
  test(`consumer: ${consumer.name}`, { timeout: 600000 }, async () => {
    const dir = join(here, consumer.dir || consumer.name);
    const result = { name: consumer.name, tool: consumer.tool, toolVersion: null, install: null, checksMs: null, buildMs: null, pages: [] };
    if (!consumer.dev) result.install = await install(dir);
    if (consumer.tool) result.toolVersion = JSON.parse(readFileSync(join(dir, "node_modules", consumer.tool, "package.json"), "utf8")).version;
    for (const cmd of consumer.checks || []) result.checksMs = (result.checksMs || 0) + (await run(cmd[0], cmd.slice(1), dir)).ms;
    if (consumer.build) {
      result.buildMs = 0;
      for (const cmd of consumer.build) result.buildMs += (await run(cmd[0], cmd.slice(1), dir)).ms;
    }
    let host;
    if (consumer.dev) {
      const started = Date.now();
      host = await viteDev(dir);
      result.startMs = Date.now() - started;
    } else {
      host = await serve(resolve(dir, consumer.serve));
    }
    try {
      for (const page of consumer.pages) result.pages.push(await checkPage(host.origin, page));
    } catch (e) {
      if (host.log) e.message += `\nvite:\n${host.log().slice(-3000)}`;
      throw e;
    } finally {
      await host.close();
    }
    results.push(result);
  });
}

// The README's Background Sync recipe (tests/consumers/plain/sync-sw.js, checked to be that text),
// after the browser stopped its worker: the worker is started again for `sync` with its memory
// gone, so it must find its user again (review AD: the recipe kept it in memory only, and its
// `sync` handler uploaded nothing, for good).
test("consumer: plain, the README's Background Sync worker after the browser stopped it", { timeout: 120000 }, async () => {
  const dir = join(here, "plain");
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const file = readFileSync(join(dir, "sync-sw.js"), "utf8");
  const recipe = '// sw.js, registered with navigator.serviceWorker.register("/sw.js", { type: "module" })\n' + file.slice(file.indexOf("\n") + 1);
  assert.ok(readme.includes(recipe), "tests/consumers/plain/sync-sw.js is no longer the README's Background Sync recipe");
  if (!existsSync(join(dir, "node_modules", "progress-outbox"))) await install(dir);
  const host = await serve(dir);
  const context = await browser.newContext();
  const consoleLines = [];
  try {
    const tab = await context.newPage();
    tab.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    tab.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
    await tab.goto(host.origin + "/sync.html");
    const entry = await within(30000, tab.evaluate(async () => (await window.consumer).entry), "open + saveWeight");
    // The worker was handed the user, not yet a token: its first try fails with nothing sent.
    await until("the worker's first try, without a token", async () => {
      const events = await tab.evaluate(async () => (await window.consumer).outbox.events({ userId: "consumer-plain-sync" }));
      return events.find((e) => e.entityId === entry.id && e.errorMessage);
    });
    // The browser stops the idle worker: the started user and the tokens in its memory are gone.
    const cdp = await context.newCDPSession(tab);
    const running = new Map(); // version id -> runningStatus
    cdp.on("ServiceWorker.workerVersionUpdated", ({ versions }) => { for (const v of versions) running.set(v.versionId, v.runningStatus); });
    await cdp.send("ServiceWorker.enable");
    await until("the worker's version reported", async () => running.size > 0);
    await cdp.send("ServiceWorker.stopAllWorkers");
    await until("the worker stopped", async () => running.size > 0 && [...running.values()].every((status) => status === "stopped"));
    await tab.evaluate(() => window.sendToken());
    await tab.evaluate(() => window.askForSync());
    const record = await until("the record on the dev API, sent by the worker started again", async () => (await api.records()).find((r) => r.localId === entry.id), 30000).catch((e) => {
      throw new Error(`${e.message}\nconsole:\n${consoleLines.join("\n")}`);
    });
    assert.equal(record.quantity, 72.5);
    assert.equal((await api.records()).filter((r) => r.localId === entry.id).length, 1);
  } finally {
    await context.close();
    await host.close();
  }
});
