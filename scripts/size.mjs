// The package's payload sizes (raw, gzip -9, brotli -11): the wasm size is a product figure.
// "JS" is every JS module the package loads: the package entry module (index.js), wasm-bindgen's
// glue and its snippets, each compressed on its own (as a browser fetches them) and summed.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

/** The size budget of issue 10: wasm + JS, gzip. */
export const BUDGET_GZIP_KB = 80;

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
  const js = jsFiles(pkg).sort().map((f) => ({ file: relative(pkg, f), ...sizes(f) }));
  const glue = { raw: 0, gzip: 0, brotli: 0, files: js.length };
  for (const s of js) {
    glue.raw += s.raw;
    glue.gzip += s.gzip;
    glue.brotli += s.brotli;
  }
  return { wasm, js, glue, total: { raw: wasm.raw + glue.raw, gzip: wasm.gzip + glue.gzip, brotli: wasm.brotli + glue.brotli } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const kb = (n) => (n / 1024).toFixed(1) + " KB";
  const s = packageSizes();
  console.log(`[size] wasm: ${kb(s.wasm.raw)} raw, ${kb(s.wasm.gzip)} gzip, ${kb(s.wasm.brotli)} brotli`);
  for (const j of s.js) console.log(`[size]   ${j.file}: ${kb(j.raw)} raw, ${kb(j.gzip)} gzip, ${kb(j.brotli)} brotli`);
  console.log(`[size] JS (${s.glue.files} files): ${kb(s.glue.raw)} raw, ${kb(s.glue.gzip)} gzip, ${kb(s.glue.brotli)} brotli`);
  const total = s.total.gzip / 1024;
  console.log(`[size] total: ${kb(s.total.gzip)} gzip, ${kb(s.total.brotli)} brotli (budget ${BUDGET_GZIP_KB} KB gzip: ${total <= BUDGET_GZIP_KB ? "met" : "not met"})`);
}
