// Nothing here is specific to progress-outbox: webpack 5 sees the glue's
// `new URL("progress_outbox_bg.wasm", import.meta.url)` and emits the wasm as an asset by itself.
import { fileURLToPath } from "node:url";

export default {
  mode: "production",
  entry: "./src/main.js",
  output: { path: fileURLToPath(new URL("dist", import.meta.url)), filename: "main.js", clean: true },
};
