// Two ways to give esbuild's bundle its wasm; esbuild leaves the glue's
// `new URL("progress_outbox_bg.wasm", import.meta.url)` as it is, so the wasm is looked up next to the bundle.
import * as esbuild from "esbuild";
import { copyFileSync } from "node:fs";
import { createRequire } from "node:module";

// 1. Copy the wasm next to the bundle; the app needs no init() call.
await esbuild.build({ entryPoints: ["src/main.js"], bundle: true, format: "esm", minify: true, outdir: "dist" });
const wasm = createRequire(import.meta.url).resolve("progress-outbox/progress_outbox_bg.wasm");
copyFileSync(wasm, "dist/progress_outbox_bg.wasm");

// 2. Or let esbuild emit it (hashed name) and pass its URL to init({ module_or_path }).
await esbuild.build({
  entryPoints: ["src/explicit.js"], bundle: true, format: "esm", minify: true, outdir: "dist",
  loader: { ".wasm": "file" }, assetNames: "[name]-[hash]", publicPath: "/dist/",
});
