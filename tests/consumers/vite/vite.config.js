// `vite build` needs no configuration for progress-outbox. The dev server does: it pre-bundles
// dependencies into node_modules/.vite/deps/, where the glue's
// `new URL("progress_outbox_bg.wasm", import.meta.url)` finds no wasm; excluded, the package is
// served from its own folder. (The proxy sends the app's /api calls to the test's dev API.)
export default {
  optimizeDeps: { exclude: ["progress-outbox"] },
  server: { proxy: process.env.API_ORIGIN ? { "/api": process.env.API_ORIGIN } : undefined },
};
