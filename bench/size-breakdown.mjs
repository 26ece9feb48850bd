// Where the wasm's bytes go: `node bench/size-breakdown.mjs` (after `npm run build`; run by
// `npm run bench`) writes bench/size-breakdown.txt with twiggy's `top -n 40`, `dominators`, `monos`
// and a per-crate sum.
//
// The shipped wasm has no function names (wasm-opt drops the name section), so twiggy could only
// say `code[123]`. This script rebuilds the same binary with names: it takes the cargo artifact
// scripts/build.sh just built (target/size/..., or target/... after the fallback build; it keeps its
// `name` section), runs the pinned wasm-bindgen CLI on it as wasm-pack does, then wasm-opt with
// exactly the flags of Cargo.toml's [package.metadata.wasm-pack.profile.release] plus `-g`, which
// keeps the name section and changes nothing else. The same run without `-g` must give the bytes of
// pkg/progress_outbox_bg.wasm; the report says whether it did (otherwise pkg/ is from another build).
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "bench", "size-breakdown.txt");
const env = { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${join(homedir(), ".cargo", "bin")}:${process.env.PATH}` };
const run = (cmd, args) => execFileSync(cmd, args, { env, cwd: root, encoding: "utf8", maxBuffer: 256 << 20 });

/** The crate an item belongs to, from its name (v0-mangled paths: `crate[hash]::...`). */
function crateOf(name) {
  if (/^data segment/.test(name)) return "data segments (string literals, tables)";
  if (/^(export |import |outbox_|__wbg|__wbindgen|__externref|isOutboxError)|shim/.test(name)) return "wasm-bindgen exports, imports and shims";
  if (/^(table|elem|type|global|memory|func|code)\[/.test(name)) return "wasm sections (types, tables, elements)";
  if (/^(core\[[0-9a-f]+\]::)?ptr::drop_in_place/.test(name)) return "drop glue (core::ptr::drop_in_place, for every crate's types)";
  // `<u32 as core::fmt::Display>::fmt`: a primitive's impl counts for the trait's crate.
  const prim = /^<&?(?:mut )?(?:str|char|bool|[ui](?:8|16|32|64|128|size)|f32|f64|\[[^\]]*\])(?:>| as ([A-Za-z_][A-Za-z0-9_]*))/.exec(name);
  if (prim && !prim[1]) return "std (core)";
  const m = prim ? [null, prim[1]] : /^[<&\s]*(?:(?:dyn|mut) )?[<&\s]*([A-Za-z_][A-Za-z0-9_]*)(?:\[[0-9a-f]+\])?::/.exec(name);
  if (!m) return "unnamed / other";
  const crate = m[1];
  if (["core", "alloc", "std", "dlmalloc", "compiler_builtins"].includes(crate)) return `std (${crate})`;
  return crate.replace(/_/g, "-");
}

const candidates = ["target/size/wasm32-unknown-unknown/release/progress_outbox.wasm", "target/wasm32-unknown-unknown/release/progress_outbox.wasm"]
  .map((p) => join(root, p))
  .filter(existsSync)
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
if (!candidates.length) throw new Error("no cargo wasm artifact: run `npm run build` first");
const tmp = mkdtempSync(join(tmpdir(), "size-breakdown-"));
try {
  // Copied under the build lock: another build must not rewrite it half-way.
  const artifact = join(tmp, "progress_outbox.wasm");
  run("flock", [join(root, "target", ".build.lock"), "cp", candidates[0], artifact]);
  run("wasm-bindgen", ["--target", "web", "--out-dir", join(tmp, "bg"), "--out-name", "progress_outbox", artifact]);
  const toml = readFileSync(join(root, "Cargo.toml"), "utf8");
  const section = toml.slice(toml.indexOf("[package.metadata.wasm-pack.profile.release]"));
  const flags = JSON.parse(/wasm-opt\s*=\s*(\[[^\]]*\])/.exec(section)[1]);
  const bg = join(tmp, "bg", "progress_outbox_bg.wasm");
  const named = join(tmp, "named.wasm");
  const stripped = join(tmp, "stripped.wasm");
  run("wasm-opt", [bg, "-o", named, ...flags, "-g"]);
  run("wasm-opt", [bg, "-o", stripped, ...flags]);
  const shipped = join(root, "pkg", "progress_outbox_bg.wasm");
  const bytes = (p) => readFileSync(p).length;
  const gz = (p) => gzipSync(readFileSync(p), { level: 9 }).length;
  const same = existsSync(shipped) && Buffer.compare(readFileSync(shipped), readFileSync(stripped)) === 0;

  const top = run("twiggy", ["top", "-n", "40", named]);
  const dominators = run("twiggy", ["dominators", "-d", "3", "-r", "80", named]);
  const monos = run("twiggy", ["monos", "-m", "15", "-n", "3", named]);
  const items = JSON.parse(run("twiggy", ["top", "--format", "json", named]));

  // Per crate: each item's shallow bytes, under the crate its name starts with (`<A as B>::f`
  // counts for A's crate; generic code instantiated for our types counts where it is defined).
  const crates = new Map();
  let code = 0;
  for (const { name, shallow_size: size } of items) {
    if (/^custom section|subsection$/.test(name)) continue; // the name section and metadata: not shipped
    code += size;
    crates.set(crateOf(name), (crates.get(crateOf(name)) || 0) + size);
  }
  const byCrate = [...crates].sort((a, b) => b[1] - a[1]);
  // Across crates: what kinds of code the bytes are (an item may be in more than one).
  const kinds = [
    ["async fn bodies and closures of our crate (progress_outbox ...{closure#N})", (n) => /^[<]*progress_outbox\[/.test(n) && /\{closure#/.test(n)],
    ["futures turned into promises (js_sys::futures::future_to_promise::<...>)", (n) => /future_to_promise/.test(n)],
    ["drop glue (core::ptr::drop_in_place::<...>)", (n) => /ptr::drop_in_place/.test(n)],
    ["formatting (core::fmt, Display/Debug impls, format!)", (n) => /::fmt::|as core\[[0-9a-f]+\]::fmt::|_fmt_inner|::format::/.test(n)],
    ["serde (Serialize impls, serde-wasm-bindgen)", (n) => /serde/.test(n)],
    ["bindings.rs (the API surface, its serde views)", (n) => /progress_outbox\[[0-9a-f]+\]::bindings::/.test(n)],
    ["the processor (sync::processor)", (n) => /progress_outbox\[[0-9a-f]+\]::sync::processor::/.test(n)],
    ["the store (store::)", (n) => /progress_outbox\[[0-9a-f]+\]::store::/.test(n)],
    ["domain logic (domain::)", (n) => /progress_outbox\[[0-9a-f]+\]::domain::/.test(n)],
  ].map(([label, test]) => [label, items.filter((i) => !/^custom section|subsection$/.test(i.name) && test(i.name)).reduce((a, i) => a + i.shallow_size, 0)]);

  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  const lines = [
    "# Size breakdown of the release wasm (`node bench/size-breakdown.mjs`; `npm run bench` runs it)",
    "",
    `Generated ${new Date().toISOString()} from ${candidates[0].slice(root.length + 1)}`,
    `  -> wasm-bindgen ${run("wasm-bindgen", ["--version"]).trim().split(" ")[1]} --target web -> wasm-opt ${flags.join(" ")} -g (names kept)`,
    `Named build: ${kb(bytes(named))} raw (the name section included); the same without -g: ${kb(bytes(stripped))} raw, ${kb(gz(stripped))} gzip;`,
    `pkg/progress_outbox_bg.wasm: ${existsSync(shipped) ? `${kb(bytes(shipped))} raw, ${kb(gz(shipped))} gzip: ${same ? "byte-identical to the build without -g (this breakdown is of the shipped code)" : "DIFFERENT from it (pkg/ comes from another build; rebuild and rerun)"}` : "missing"}.`,
    "Sizes below are uncompressed bytes of each item; shares are of the code and data (the name section excluded).",
    "",
    "## Per crate (sum of twiggy shallow sizes by the crate an item's name starts with)",
    "",
    ...byCrate.map(([c, n]) => `${String(n).padStart(9)} bytes ${((100 * n) / code).toFixed(1).padStart(5)}%  ${c}`),
    `${String(code).padStart(9)} bytes total`,
    "",
    "## Across crates (by what an item's name says; an item may count in more than one line)",
    "",
    ...kinds.map(([k, n]) => `${String(n).padStart(9)} bytes ${((100 * n) / code).toFixed(1).padStart(5)}%  ${k}`),
    "",
    "## twiggy top -n 40",
    "",
    top.trimEnd(),
    "",
    "## twiggy dominators -d 3 -r 80 (retained size: what would go if that item went)",
    "",
    dominators.trimEnd(),
    "",
    "## twiggy monos -m 15 -n 3 (generic functions by the bytes their copies cost)",
    "",
    monos.trimEnd(),
    "",
  ];
  writeFileSync(out, lines.join("\n"));
  console.log(`[size-breakdown] wrote bench/size-breakdown.txt (${same ? "matches pkg/" : "pkg/ is from another build"})`);
  console.log(lines.slice(8, 8 + 2 + Math.min(byCrate.length, 12)).join("\n"));
  console.log(kinds.map(([k, n]) => `${String(n).padStart(9)} bytes  ${k}`).join("\n"));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
