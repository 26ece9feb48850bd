// Types of the package entry (index.js): everything the wasm-bindgen glue declares, which embeds
// the declarations of types/progress-outbox.d.ts.
import glueInit from "./progress_outbox.js";

export * from "./progress_outbox.js";

/**
 * Loads and instantiates progress_outbox_bg.wasm. Optional: `Outbox.open()` calls it with the
 * default URL (the wasm next to the JS module) on first use.
 * Idempotent: once loaded it returns at once; calls while a load is under way share that load;
 * after a failed load the next call tries again.
 * Pass `{ module_or_path }` (a URL, a `Response`, the bytes or a compiled `WebAssembly.Module`)
 * when the wasm is served from elsewhere; call it before the first `Outbox.open()`.
 */
declare const init: typeof glueInit;
export default init;
