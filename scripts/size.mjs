// The package's payload sizes (raw, gzip, brotli): the wasm size is a product figure.
// "glue" is every JS module the package loads (wasm-bindgen's glue and its snippets), summed
// file by file, as a browser fetches them.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

export function sizes(path) {
  const bytes = readFileSync(path);
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

function jsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? jsFiles(p) : p.endsWith(".js") ? [p] : [];
  });
}

export function packageSizes(pkg = "pkg") {
  const wasm = sizes(join(pkg, "progress_outbox_bg.wasm"));
  const glue = { raw: 0, gzip: 0, brotli: 0, files: 0 };
  for (const f of jsFiles(pkg)) {
    const s = sizes(f);
    glue.raw += s.raw;
    glue.gzip += s.gzip;
    glue.brotli += s.brotli;
    glue.files += 1;
  }
  return { wasm, glue, total: { raw: wasm.raw + glue.raw, gzip: wasm.gzip + glue.gzip, brotli: wasm.brotli + glue.brotli } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const kb = (n) => (n / 1024).toFixed(1) + " KB";
  const s = packageSizes();
  console.log(`[size] wasm: ${kb(s.wasm.raw)} raw, ${kb(s.wasm.gzip)} gzip, ${kb(s.wasm.brotli)} brotli`);
  console.log(`[size] JS (${s.glue.files} files): ${kb(s.glue.raw)} raw, ${kb(s.glue.gzip)} gzip, ${kb(s.glue.brotli)} brotli`);
  console.log(`[size] total: ${kb(s.total.gzip)} gzip (budget 60 KB)`);
}
