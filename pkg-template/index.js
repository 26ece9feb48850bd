// The entry module of the npm package `progress-outbox` (copied into pkg/ by scripts/pack.mjs).
// It re-exports the wasm-bindgen glue (progress_outbox.js), with two differences:
// - `Outbox.open(config)` first calls `init()`, which loads progress_outbox_bg.wasm from its
//   default URL (next to the glue) unless `init()` was already called or is under way. The glue's
//   `init()` returns at once when the module is loaded and shares one in-flight load, so
//   `await init()` and `await init({ module_or_path })` keep working and are optional.
// - `Outbox` is a thin class around the glue's: the glue keeps the raw wasm handle in a writable
//   property (`__wbg_ptr`), and a method called on anything else (a copy, a forged handle, a
//   method taken off its object, a freed outbox) reached the wasm with a pointer to memory that
//   is not an outbox: an unclear "null pointer passed to rust", or a trap. Here the glue object is
//   private, and such a call gets an Error with a `code`, as every other mistake does.
// Nothing else happens here: no IndexedDB, no fetch of our own, no records; that all stays in the
// Rust code.
import init, { Outbox as GlueOutbox, isOutboxError as glueIsOutboxError } from "./progress_outbox.js";

export * from "./progress_outbox.js";
export { init as default };

// Each Outbox's glue object; `null` once freed. A WeakMap looks nothing up on its key: a Proxy
// or an object from another realm passed as `this` is simply not found.
const glue = new WeakMap();

function fail(ErrorClass, code, message) {
  const e = new ErrorClass(message);
  e.code = code;
  return e;
}

function of(self, method) {
  const g = glue.get(Object(self));
  if (g) return g;
  if (g === null) {
    throw fail(Error, "CLOSED", `${method}: this outbox was freed (free() closes it); open another with Outbox.open(config)`);
  }
  throw fail(
    TypeError,
    "INVALID_TYPE",
    `${method}: called on something that is not an outbox from Outbox.open() (a method taken off its outbox loses it: call outbox.${method}(...), or bind it)`,
  );
}

// The promise-returning methods reject (never throw) when called on something that is not an outbox.
function later(self, method, call) {
  let g;
  try {
    g = of(self, method);
  } catch (e) {
    return Promise.reject(e);
  }
  return call(g);
}

function wrap(g) {
  const outbox = Object.create(Outbox.prototype);
  glue.set(outbox, g);
  return outbox;
}

export class Outbox {
  constructor() {
    throw fail(TypeError, "INVALID_TYPE", "new Outbox(): an outbox is opened with `await Outbox.open(config)`");
  }

  static open(config) {
    return init().then(() => GlueOutbox.open(config)).then(wrap);
  }

  start(userId) {
    return of(this, "start").start(userId);
  }

  stop() {
    return of(this, "stop").stop();
  }

  close() {
    return of(this, "close").close();
  }

  subscribe(callback) {
    return of(this, "subscribe").subscribe(callback);
  }

  get currentUser() {
    return of(this, "currentUser").currentUser;
  }

  get isLeader() {
    return of(this, "isLeader").isLeader;
  }

  saveWeight(kg, options) {
    return later(this, "saveWeight", (g) => g.saveWeight(kg, options));
  }

  save(metric, quantity, options) {
    return later(this, "save", (g) => g.save(metric, quantity, options));
  }

  update(entryId, changes) {
    return later(this, "update", (g) => g.update(entryId, changes));
  }

  delete(entryId) {
    return later(this, "delete", (g) => g.delete(entryId));
  }

  stats(userId) {
    return later(this, "stats", (g) => g.stats(userId));
  }

  events(query) {
    return later(this, "events", (g) => g.events(query));
  }

  staleEvents(userId) {
    return later(this, "staleEvents", (g) => g.staleEvents(userId));
  }

  resetForRetry(eventIds) {
    return later(this, "resetForRetry", (g) => g.resetForRetry(eventIds));
  }

  processNow() {
    return later(this, "processNow", (g) => g.processNow());
  }

  entries(query) {
    return later(this, "entries", (g) => g.entries(query));
  }

  // Closes the outbox (as close() does), then releases the wasm object; later calls throw CLOSED.
  free() {
    if (glue.get(Object(this)) === null) return; // freed already: nothing to do
    const g = of(this, "free");
    glue.set(this, null);
    try {
      g.close();
    } finally {
      g.free();
    }
  }
}

if (typeof Symbol.dispose === "symbol") Outbox.prototype[Symbol.dispose] = Outbox.prototype.free;

// Usable before the wasm is loaded (in a `catch` after a failed load, say): only the errors made
// in this module (`new Outbox()`, say) can exist then, told apart by their shape as the glue does.
export function isOutboxError(e) {
  try {
    return glueIsOutboxError(e);
  } catch {
    try {
      return e instanceof Error && (e.code === "INVALID_TYPE" || e.code === "CLOSED") && typeof e.message === "string";
    } catch {
      return false;
    }
  }
}
