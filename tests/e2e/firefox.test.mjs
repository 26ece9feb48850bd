// The package as shipped (pkg/: the size-built wasm and the minified glue), in Firefox.
// The browser suites run a debug build through wasm-bindgen-test and the other e2e tests use
// Chromium; this one drives Debian's Firefox ESR through geckodriver (WebDriver over HTTP, no
// extra npm package) against the dev API: bad input is refused with a JS Error and stores
// nothing, a save reaches the server exactly once and the entry gets its backend id, a 503
// leaves an event failed and the retry after recovery delivers it; an edit (PUT), a delete
// (DELETE) and a steps entry reach the server too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, countByLocalId, startServer, tempDir } from "./helpers.mjs";

const FIREFOX = ["/usr/bin/firefox-esr", "/usr/bin/firefox"].find(existsSync);

/**
 * geckodriver on a port it picks itself (`--port 0`, read back from "Listening on": no port freed
 * here and taken by another process before geckodriver binds it); resolves with a tiny WebDriver
 * client once it listens.
 */
async function geckodriver() {
  const proc = spawn("geckodriver", ["--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`geckodriver did not start:\n${out}`)), 15000);
    const seen = (d) => {
      out += d;
      const m = /Listening on [\d.]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout.on("data", seen);
    proc.stderr.on("data", seen);
    proc.on("error", (e) => reject(new Error(`geckodriver could not run (npm test installs it): ${e.message}`)));
  });
  const call = async (method, path, body) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(json.value)}`);
    return json.value;
  };
  return { call, stop: () => proc.kill("SIGKILL") };
}

/** What the page runs: refused inputs, then a save that must reach the server. */
const FLOW = `
  const report = (r) => { window.__flow = r; };
  try {
    const { default: init, Outbox } = await import("/pkg/progress_outbox.js");
    await init();
    const user = "firefox-" + Math.random().toString(36).slice(2);
    const login = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId: user }) });
    const { token } = await login.json();
    // A token function, a Date and a callback: values that cross from the caller's realm.
    const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName: user, token: async () => token, processingIntervalMs: 100, backoffMs: [1500], log: "off" }); // the retry comes after the fault switch is back to healthy, even on a stalled page
    const seen = [];
    const off = outbox.subscribe((s) => seen.push(s));
    const refused = [];
    for (const kg of [0, 635.0001, NaN, "72", null]) {
      try { await outbox.saveWeight(kg, { userId: user }); refused.push({ kg: String(kg), stored: true }); }
      catch (e) { refused.push({ kg: String(kg), isError: e instanceof Error, name: e.name, message: e.message }); }
    }
    const afterBad = { entries: (await outbox.entries(user)).length, events: (await outbox.events({ userId: user })).length };
    outbox.start(user);
    const when = new Date(Date.now() - 3600000);
    const saved = await outbox.saveWeight(72.5, { date: when, priority: 5 });
    let entries = [];
    for (let i = 0; i < 200 && !(entries[0] && entries[0].backendId); i++) {
      entries = await outbox.entries();
      await new Promise((r) => setTimeout(r, 50));
    }
    const stats = await outbox.stats();
    const events = await outbox.events({});
    // The server fails (503), then recovers: the retry at nextAttemptAt delivers it.
    const faults = (f) => fetch("/api/v1/faults", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(f) });
    await faults({ mode: "status", status: 503 });
    const second = await outbox.saveWeight(73, { date: when });
    let failed;
    for (let i = 0; i < 200 && !failed; i++) {
      failed = (await outbox.events({ status: "failed" })).find((e) => e.entityId === second.id);
      if (!failed) await new Promise((r) => setTimeout(r, 25));
    }
    await faults({ mode: "healthy" });
    let retried;
    for (let i = 0; i < 200 && !(retried && retried.status === "completed"); i++) {
      retried = (await outbox.events({})).find((e) => e.entityId === second.id);
      await new Promise((r) => setTimeout(r, 50));
    }
    // The subscriber hears of the completion a little later (its stats read, storage estimate).
    for (let i = 0; i < 100 && seen[seen.length - 1]?.completed !== 2; i++) await new Promise((r) => setTimeout(r, 50));
    const lastSeen = seen[seen.length - 1];
    // Edits and deletes, and another metric: an update (PUT) and a delete (DELETE) of synced entries.
    const edited = await outbox.update(saved.id, { quantity: 72.7 });
    await outbox.delete(second.id);
    const steps = await outbox.save("steps", 8042);
    let pendingOps = [];
    for (let i = 0; i < 200; i++) {
      pendingOps = (await outbox.events({})).filter((e) => e.status !== "completed");
      if (!pendingOps.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const ops = (await outbox.events({})).map((e) => [e.operation, e.status, e.entityId]);
    const finalEntries = await outbox.entries();
    off();
    outbox.close();
    report({ refused, afterBad, saved, entries, stats, events, when: when.getTime(), subscribed: seen.length, lastSeen, second, failed, retried, edited, steps, pendingOps, ops, finalEntries });
  } catch (e) {
    report({ error: String((e && e.stack) || e) });
  }
`;

/**
 * Runs FLOW in the page and returns its report. "module": as the page's own module script, the
 * way an app's code runs. "webdriver": inside WebDriver's execute-script, the way test harnesses
 * drive a page (the package is then imported from WebDriver's script realm).
 */
async function runFlow(driver, sessionId, how) {
  if (how === "webdriver") {
    return driver.call("POST", `/session/${sessionId}/execute/async`, {
      args: [],
      script: `const done = arguments[arguments.length - 1];
        (async () => { ${FLOW} })().then(() => done(window.__flow), (e) => done({ error: String(e) }));`,
    });
  }
  await driver.call("POST", `/session/${sessionId}/execute/sync`, {
    args: [FLOW],
    script: `const s = document.createElement("script"); s.type = "module"; s.textContent = arguments[0]; document.head.append(s);`,
  });
  for (let i = 0; i < 300; i++) {
    const r = await driver.call("POST", `/session/${sessionId}/execute/sync`, { args: [], script: "return window.__flow || null;" });
    if (r) return r;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error("the page's flow did not finish within 30 s");
}

async function check(r, how, server) {
  assert.equal(r.error, undefined, `${how}: ${r.error}`);
  for (const x of r.refused) {
    assert.ok(x.isError, `${how}: saveWeight(${x.kg}) must reject with an Error: ${JSON.stringify(x)}`);
    assert.ok(["TypeError", "RangeError"].includes(x.name), `${how}: saveWeight(${x.kg}): ${x.name}: ${x.message}`);
    assert.ok(x.message.length > 10, x.message);
  }
  assert.deepEqual(r.afterBad, { entries: 0, events: 0 }, `${how}: refused input stored nothing`);
  assert.equal(r.entries.length, 1);
  assert.equal(r.entries[0].id, r.saved.id);
  assert.equal(r.entries[0].date, r.when, `${how}: the Date given is the entry's date`);
  assert.ok(r.subscribed > 0 && r.lastSeen.completed === 2, `${how}: subscribe saw both uploads: ${JSON.stringify(r.lastSeen)}`);
  assert.equal(typeof r.entries[0].backendId, "string", `${how}: the entry got the server's id: ${JSON.stringify({ stats: r.stats, events: r.events })}`);
  assert.equal(r.stats.completed, 1);
  assert.equal(r.stats.pending + r.stats.processing + r.stats.failed + r.stats.gaveUp, 0);
  assert.deepEqual(r.events.map((e) => [e.status, e.priority]), [["completed", 5]]); // before the 503 phase
  assert.ok(r.failed, `${how}: the 503 left the event failed`);
  assert.match(r.failed.errorMessage, /503/);
  assert.equal(r.failed.attemptCount, 1, `${how}: the 503 is one failed answer`);
  assert.equal(r.failed.requestCount, 1);
  assert.equal(r.retried.status, "completed", `${how}: the retry after recovery delivered it: ${JSON.stringify(r.retried)}`);
  // attemptCount counts failed answers only (the 503); requestCount every request sent.
  assert.equal(r.retried.attemptCount, 1);
  assert.equal(r.retried.requestCount, 2);
  assert.equal(r.retried.id, r.failed.id);
  const all = await server.allRecords(); // deleted ones included
  const records = all.filter((x) => !x.deleted);
  assert.equal(countByLocalId(all).get(r.second.id), 1, `${how}: the retried entry stored once`);
  assert.equal(countByLocalId(records).get(r.saved.id), 1, `${how}: stored on the server exactly once`);
  const stored = records.find((x) => x.localId === r.saved.id);
  assert.equal(String(stored.id), r.entries[0].backendId);
  // The edit, the delete and the steps entry reached the server too.
  assert.deepEqual(r.pendingOps, [], `${how}: everything delivered: ${JSON.stringify(r.ops)}`);
  assert.equal(r.edited.quantity, 72.7);
  assert.equal(stored.quantity, 72.7, `${how}: the update (PUT) reached the server`);
  assert.equal(all.find((x) => x.localId === r.second.id).deleted, true, `${how}: the delete (DELETE) reached the server`);
  const steps = records.find((x) => x.localId === r.steps.id);
  assert.deepEqual([steps.type, steps.unit, steps.quantity], ["steps", "count", 8042]);
  assert.deepEqual(r.finalEntries.map((e) => [e.id, e.quantity]).sort(), [[r.saved.id, 72.7], [r.steps.id, 8042]].sort());
  assert.deepEqual(r.ops.map(([op]) => op).sort(), ["create", "create", "create", "delete", "update"]);
}

/**
 * Runs `run(driver, sessionId, server)` in a fresh headless Firefox (its profile prepared by
 * `prepare(profileDir)`, if given) against the dev API, and tears all of it down after.
 */
async function withFirefox(name, prepare, run) {
  assert.ok(FIREFOX, "Firefox ESR is not installed (npm test installs it)");
  const server = await startServer({ env: { BENCH: "1", QUIET: "1" } }); // BENCH serves /bench/startup.html
  const driver = await geckodriver();
  const profile = tempDir(name);
  prepare?.(profile);
  try {
    const { sessionId } = await driver.call("POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "firefox", "moz:firefoxOptions": { binary: FIREFOX, args: ["-headless", "-profile", profile] } } },
    });
    try {
      await run(driver, sessionId, server);
    } finally {
      await driver.call("DELETE", `/session/${sessionId}`).catch(() => {
        // geckodriver could not end it: the Firefox running on this profile would outlive the test
        // (killing geckodriver leaves it running), so it is found by its profile path.
        spawnSync("pkill", ["-KILL", "-f", profile]);
      });
    }
  } finally {
    driver.stop();
    await server.stop();
    cleanup(profile);
  }
}

test("the shipped package in Firefox: bad input refused, a save uploaded exactly once with its backend id, a 503 retried after recovery, an edit and a delete synced", () =>
  withFirefox("firefox", null, async (driver, sessionId, server) => {
    await driver.call("POST", `/session/${sessionId}/timeouts`, { script: 60000, pageLoad: 30000 });
    for (const how of ["module", "webdriver"]) {
      await driver.call("POST", `/session/${sessionId}/url`, { url: `${server.url}/bench/startup.html` });
      const r = await runFlow(driver, sessionId, how);
      await check(r, how, server);
    }
  }));

/** Fills the origin's quota from the page, saves into the full storage, frees it, saves again. */
const QUOTA_FLOW = `
  const done = arguments[arguments.length - 1];
  (async () => {
    const { default: init, Outbox } = await import("/pkg/progress_outbox.js");
    await init();
    const user = "quota-" + Math.random().toString(36).slice(2);
    const outbox = await Outbox.open({ endpoint: "/api/v1/progress", dbName: user, token: "t", log: "off" });
    const settle = (p) => p.then((v) => ({ ok: v.id }), (e) => ({ code: e.code, message: e.message }));
    const before = await settle(outbox.saveWeight(70, { userId: user }));
    // A database an older version of the app left (schema v2, 600 entries never uploaded): its
    // upgrade writes an event for each, more than the space the filler leaves.
    const old = "old-" + user;
    await new Promise((ok, no) => {
      const r = indexedDB.open(old, 2);
      r.onupgradeneeded = () => {
        const store = r.result.createObjectStore("entries", { keyPath: "id" });
        store.createIndex("byUserDate", ["userId", "date"]);
        for (let i = 0; i < 600; i++) store.put({ id: "old-" + i, userId: "u-old", type: "weight", quantity: 60 + (i % 40), unit: "kg", date: 1790000000000 + i, backendId: null, createdAt: 1790000000000 + i });
      };
      r.onsuccess = () => { r.result.close(); ok(); };
      r.onerror = () => no(r.error);
    });
    // Another database of the origin takes what is left, 50 KB at a time, until the quota refuses.
    const junk = await new Promise((ok, no) => { const r = indexedDB.open("junk-" + user); r.onupgradeneeded = () => r.result.createObjectStore("x"); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
    const blob = "j".repeat(50000);
    let filled = 0;
    for (; filled < 2000; filled++) {
      const full = await new Promise((ok) => { const tx = junk.transaction("x", "readwrite"); tx.objectStore("x").put(blob + filled, filled); tx.oncomplete = () => ok(false); tx.onabort = () => ok(true); });
      if (full) break;
    }
    const whileFull = await settle(outbox.saveWeight(71, { userId: user }));
    const upgradeWhileFull = await Outbox.open({ endpoint: "/api/v1/progress", dbName: old, log: "off" }).then((o) => { o.close(); return { ok: true }; }, (e) => ({ code: e.code, message: e.message }));
    junk.close();
    await new Promise((ok) => { const r = indexedDB.deleteDatabase("junk-" + user); r.onsuccess = r.onerror = r.onblocked = ok; });
    await new Promise((ok) => setTimeout(ok, 500));
    const after = [];
    for (const kg of [72, 73]) after.push(await settle(outbox.saveWeight(kg, { userId: user })));
    const entries = (await outbox.entries(user)).map((e) => e.quantity).sort();
    outbox.close();
    const upgraded = await Outbox.open({ endpoint: "/api/v1/progress", dbName: old, log: "off" });
    const oldStats = await upgraded.stats("u-old");
    const oldEntries = (await upgraded.entries({ userId: "u-old", limit: 1000 })).length;
    upgraded.close();
    return { before, filled, whileFull, upgradeWhileFull, after, entries, old: { entries: oldEntries, pending: oldStats.pending } };
  })().then(done, (e) => done({ error: String(e) }));`;

test("Firefox with its storage full: a save and a schema upgrade are refused as QUOTA_EXCEEDED, and once space is back the save is stored and the upgrade runs", () =>
  // An origin limit of 10 MB, so that the page can fill it quickly.
  withFirefox("firefox-quota", (profile) => writeFileSync(join(profile, "user.js"), 'user_pref("dom.quotaManager.temporaryStorage.fixedLimit", 10240);\n'), async (driver, sessionId, server) => {
    await driver.call("POST", `/session/${sessionId}/timeouts`, { script: 120000, pageLoad: 30000 });
    await driver.call("POST", `/session/${sessionId}/url`, { url: `${server.url}/bench/startup.html` });
    const r = await driver.call("POST", `/session/${sessionId}/execute/async`, { args: [], script: QUOTA_FLOW });
    assert.equal(r.error, undefined, r.error);
    assert.ok(r.before.ok, JSON.stringify(r.before));
    assert.ok(r.filled > 0 && r.filled < 2000, `the quota refused the filler after ${r.filled} puts`);
    assert.equal(r.whileFull.code, "QUOTA_EXCEEDED", JSON.stringify(r.whileFull));
    // An upgrade storage refused says so (probe V, V1: it said STORAGE, "AbortError: A request
    // was aborted"), and keeps the old version and its records: once space is back it runs.
    assert.equal(r.upgradeWhileFull.code, "QUOTA_EXCEEDED", JSON.stringify(r.upgradeWhileFull));
    assert.deepEqual(r.old, { entries: 600, pending: 600 });
    // Firefox runs a connection's next readwrite transaction after a quota error in a mode that
    // refuses every put: this save was refused as STORAGE ("did not allow mutations") though
    // space was back.
    for (const a of r.after) assert.ok(a.ok, `a save once space is back: ${JSON.stringify(a)}`);
    assert.deepEqual(r.entries, [70, 72, 73]);
  }));
