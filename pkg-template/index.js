// The entry module of the npm package `progress-outbox` (copied into pkg/ by scripts/pack.mjs).
// It re-exports the wasm-bindgen glue (progress_outbox.js) unchanged, with one difference:
// `Outbox.open(config)` first calls `init()`, which loads progress_outbox_bg.wasm from its default
// URL (next to the glue) unless `init()` was already called or is under way. The glue's `init()`
// returns at once when the module is loaded and shares one in-flight load, so `await init()` and
// `await init({ module_or_path })` keep working and are optional. Nothing else happens here: no
// IndexedDB, no fetch of our own, no records; that all stays in the Rust code.
import init, { Outbox as GlueOutbox, isOutboxError as glueIsOutboxError } from "./progress_outbox.js";

export * from "./progress_outbox.js";
export { init as default };

function open(config) {
  return init().then(() => GlueOutbox.open(config));
}

// The glue's class itself (same prototype, `instanceof` works, every other static member passes
// through) with `open` replaced: a proxy, so that the glue module is not mutated at import.
export const Outbox = new Proxy(GlueOutbox, {
  get: (target, key, receiver) => (key === "open" ? open : Reflect.get(target, key, receiver)),
});

// Usable before the wasm is loaded (in a `catch` after a failed load, say): no error of this
// library can exist yet then, so the answer is `false`.
export function isOutboxError(e) {
  try {
    return glueIsOutboxError(e);
  } catch {
    return false;
  }
}
