// End-to-end: the package's entry module (pkg/index.js, as npm users import it) in Chromium, on a
// bare page of the dev server. Its `Outbox` keeps the glue's raw wasm handle private: a method
// called on anything but an outbox `Outbox.open()` made (taken off its object, a copy, a forged
// handle, a Proxy, another realm's object) used to reach the wasm with a pointer to memory that is
// not an outbox ("null pointer passed to rust", or a trap that broke the instance). Now it gets a
// coded Error, and the outbox keeps working.
import { test } from "node:test";
import assert from "node:assert/strict";
import { withDemo, openOutbox, waitFor } from "./helpers.mjs";

test("the entry's Outbox refuses calls on anything but an outbox with a coded Error, and free() closes it", async () => withDemo("entry-receiver", async ({ server, context }) => {
  const page = await openOutbox(context, server.url, { dbName: "e2e-entry", processingIntervalMs: 200, persist: false });
  const seen = await page.evaluate(async () => {
    const { Outbox, isOutboxError } = await import("/pkg/index.js");
    const outbox = window.outbox;
    const out = {};
    const describe = (e) => ({ type: e?.constructor?.name, code: e?.code, message: String(e?.message), coded: isOutboxError(e) });
    const settle = async (f) => {
      try {
        const r = f();
        if (r && typeof r.then === "function") {
          return { returned: "promise", ...(await r.then((v) => ({ resolved: v }), (e) => describe(e))) };
        }
        return { returned: r };
      } catch (e) {
        return { threw: true, ...describe(e) };
      }
    };
    out.instance = outbox instanceof Outbox;
    out.ownKeys = Object.getOwnPropertyNames(outbox);
    const save = outbox.save;
    out.detachedAsync = await settle(() => save("weight", 70));
    const start = outbox.start;
    out.detachedSync = await settle(() => start("u1"));
    out.copy = await settle(() => Outbox.prototype.stats.call({ ...outbox, __wbg_ptr: 8 }, "u1"));
    out.proxy = await settle(() => Outbox.prototype.stats.call(new Proxy(outbox, { get() { throw new Error("trap"); } }), "u1"));
    const frame = document.createElement("iframe");
    document.body.append(frame);
    out.otherRealm = await settle(() => Outbox.prototype.stats.call(new frame.contentWindow.Object(), "u1"));
    out.getter = await settle(() => Object.getOwnPropertyDescriptor(Outbox.prototype, "currentUser").get.call({}));
    out.constructed = await settle(() => new Outbox());
    out.freeOther = await settle(() => Outbox.prototype.free.call({}));
    // The outbox itself is untouched by all of that.
    outbox.start("u1");
    const entry = await outbox.saveWeight(72.5);
    out.user = outbox.currentUser;
    out.entry = entry.id;
    return out;
  });
  assert.equal(seen.instance, true);
  assert.deepEqual(seen.ownKeys, [], "no handle on the object");
  for (const key of ["detachedAsync", "copy", "proxy", "otherRealm"]) {
    assert.equal(seen[key].returned, "promise", `${key}: rejects rather than throws: ${JSON.stringify(seen[key])}`);
    assert.equal(seen[key].code, "INVALID_TYPE", `${key}: ${JSON.stringify(seen[key])}`);
    assert.equal(seen[key].type, "TypeError", key);
    assert.equal(seen[key].coded, true, key);
    assert.match(seen[key].message, /not an outbox from Outbox\.open\(\)/, key);
  }
  for (const key of ["detachedSync", "getter", "constructed", "freeOther"]) {
    assert.equal(seen[key].threw, true, `${key}: ${JSON.stringify(seen[key])}`);
    assert.equal(seen[key].code, "INVALID_TYPE", `${key}: ${JSON.stringify(seen[key])}`);
  }
  assert.equal(seen.user, "u1");
  await waitFor("the save uploaded", async () => {
    const events = await page.evaluate(() => window.outbox.events({ userId: "u1" }));
    return events.length === 1 && events[0].status === "completed";
  });

  // free() closes the outbox first (a started one stops uploading), then releases it.
  const after = await page.evaluate(async () => {
    const outbox = window.outbox;
    const { isOutboxError } = await import("/pkg/index.js");
    outbox.free();
    outbox.free(); // twice is harmless
    const out = {};
    try {
      outbox.start("u2");
    } catch (e) {
      out.sync = { code: e.code, message: e.message, coded: isOutboxError(e) };
    }
    out.async = await outbox.saveWeight(71).then(() => "resolved", (e) => ({ code: e.code, message: e.message }));
    return out;
  });
  assert.equal(after.sync.code, "CLOSED", JSON.stringify(after));
  assert.equal(after.sync.coded, true);
  assert.match(after.sync.message, /freed/);
  assert.equal(after.async.code, "CLOSED", JSON.stringify(after));
  // Closed, not just dropped: the uploader lock was let go, so another outbox takes over at once.
  const second = await page.evaluate(async () => {
    const { Outbox } = await import("/pkg/index.js");
    const o = await Outbox.open({ dbName: "e2e-entry", endpoint: "/api/v1/progress", persist: false, log: "warn" });
    window.second = o;
    o.start("u1");
    const until = Date.now() + 5000;
    while (!o.isLeader && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    return { leads: o.isLeader, completed: (await o.stats("u1")).completed };
  });
  assert.deepEqual(second, { leads: true, completed: 1 });
}));
