// Turns pkg/ (wasm-pack's output, built by scripts/build.sh) into the npm package, and packs it.
//
//   node scripts/pack.mjs --prepare   finish pkg/ as the package (scripts/build.sh runs this)
//   node scripts/pack.mjs             prepare again, then `npm pack` it: progress-outbox-<version>.tgz
//                                     at the repository root (`npm run pack`)
//   node scripts/pack.mjs --dry-run   prepare, then list what `npm pack` would put in the tarball
//
// "Prepare" adds what wasm-pack does not write, or writes differently on a clean build:
// - index.js / index.d.ts from pkg-template/: the entry module (Outbox.open loads the wasm on
//   first use; see the comment in pkg-template/index.js), minified like the glue;
// - both licence files (a clean wasm-pack build copies them but lists neither in `files`);
// - README.md from the repository's, with every relative link made absolute so that images
//   resolve on a registry page;
// - package.json: version and metadata from Cargo.toml, an `exports` map, `module`, `types`,
//   `sideEffects: false`, and a `files` list of exactly what the package needs (not files.json,
//   the demo's precache list).
// pkg/ stays what the demo and the tests load (/pkg/progress_outbox.js is untouched).
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TEMPLATE = join(root, "pkg-template");
const LICENCES = ["LICENSE-MIT", "LICENSE-APACHE"];
// Every file the package must hold; `npm pack` output is checked against this list.
const REQUIRED = ["package.json", "README.md", ...LICENCES, "index.js", "index.d.ts", "progress_outbox.js", "progress_outbox.d.ts", "progress_outbox_bg.wasm"];

/** name, version, description, license, repository, keywords of Cargo.toml's [package]. */
export function cargoPackage(file = join(root, "Cargo.toml")) {
  const text = readFileSync(file, "utf8");
  const section = (/^\[package\]\s*$([\s\S]*?)(?=^\[)/m.exec(text) || [])[1] || "";
  const field = (name) => {
    const m = new RegExp(`^${name}\\s*=\\s*(.+)$`, "m").exec(section);
    return m ? JSON.parse(m[1].trim()) : undefined; // TOML basic strings and string arrays are JSON here
  };
  const pkg = { name: field("name"), version: field("version"), description: field("description"), license: field("license"), repository: field("repository"), keywords: field("keywords") };
  if (!pkg.name || !pkg.version) throw new Error(`${file}: no [package] name/version`);
  return pkg;
}

/** The repository's README with relative links absolute: images from raw files, others to GitHub. */
export function packagedReadme(markdown, repository) {
  const m = /^https:\/\/github\.com\/([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(repository || "");
  if (!m) throw new Error(`Cargo.toml repository "${repository}" is not a github.com URL: cannot make README links absolute`);
  const raw = `https://raw.githubusercontent.com/${m[1]}/${m[2]}/main/`;
  const blob = `https://github.com/${m[1]}/${m[2]}/blob/main/`;
  const relative = (url) => !/^(?:[a-z][a-z0-9+.-]*:|#|\/\/)/i.test(url);
  const absolute = (url, image) => (relative(url) ? (image ? raw : blob) + url.replace(/^\.?\//, "") : url);
  const rewrite = (text) => text
    // ![alt](path "title") and [text](path)
    .replace(/(!?)\[((?:[^\]\\]|\\.)*)\]\(\s*<?([^)\s>]+)>?((?:\s+"[^"]*")?)\s*\)/g, (_, bang, text, url, title) => `${bang}[${text}](${absolute(url, bang === "!")}${title})`)
    // [ref]: path
    .replace(/^(\s{0,3}\[[^\]]+\]:\s*)(\S+)/gm, (_, head, url) => head + absolute(url, /\.(png|jpe?g|gif|svg|webp)$/i.test(url)))
    // <img src="path"> and <a href="path">
    .replace(/(<img\b[^>]*\bsrc=")([^"]+)"/gi, (_, head, url) => `${head}${absolute(url, true)}"`)
    .replace(/(<a\b[^>]*\bhref=")([^"]+)"/gi, (_, head, url) => `${head}${absolute(url, false)}"`);
  // Code (fenced blocks, inline spans) is left as it is: `handlers[name](event)` is no link.
  return markdown
    .split(/^(```[\s\S]*?^```[^\n]*$)/m)
    .map((part, i) => (i % 2 ? part : part.split(/(`[^`\n]*`)/).map((t, j) => (j % 2 ? t : rewrite(t))).join("")))
    .join("");
}

async function minifiedEntry() {
  const { minify } = await import("terser");
  const source = readFileSync(join(TEMPLATE, "index.js"), "utf8");
  const out = await minify(source, { module: true, compress: true, mangle: true });
  return out.code + "\n";
}

/** Finishes pkg/ as the npm package. Throws when pkg/ has not been built. */
export async function preparePackage(pkgDir = join(root, "pkg")) {
  if (!existsSync(join(pkgDir, "progress_outbox.js")) || !existsSync(join(pkgDir, "progress_outbox_bg.wasm"))) {
    throw new Error(`${pkgDir} has no wasm-pack build: run \`npm run build\` first`);
  }
  const cargo = cargoPackage();
  writeFileSync(join(pkgDir, "index.js"), await minifiedEntry());
  copyFileSync(join(TEMPLATE, "index.d.ts"), join(pkgDir, "index.d.ts"));
  for (const f of LICENCES) copyFileSync(join(root, f), join(pkgDir, f));
  const readme = packagedReadme(readFileSync(join(root, "README.md"), "utf8"), cargo.repository);
  const leftover = /!\[[^\]]*\]\((?!https?:)[^)]*\)|<img\b[^>]*\bsrc="(?!https?:)/i.exec(readme);
  if (leftover) throw new Error(`packaged README still has a relative image: ${leftover[0]}`);
  writeFileSync(join(pkgDir, "README.md"), readme);

  const files = [
    "index.js", "index.d.ts", "progress_outbox.js", "progress_outbox.d.ts", "progress_outbox_bg.wasm",
    "progress_outbox_bg.wasm.d.ts", "snippets/", ...LICENCES, "README.md",
  ].filter((f) => existsSync(join(pkgDir, f)));
  const repo = cargo.repository.replace(/\/$/, "");
  const manifest = {
    name: cargo.name,
    version: cargo.version,
    description: cargo.description,
    license: cargo.license,
    repository: { type: "git", url: `git+${repo}.git` },
    homepage: `${repo}#readme`,
    bugs: { url: `${repo}/issues` },
    keywords: cargo.keywords,
    type: "module",
    // index.js is the entry (Outbox.open initialises); the glue and its snippets are internal.
    exports: {
      ".": { types: "./index.d.ts", import: "./index.js", default: "./index.js" },
      // For bundlers that need the wasm's URL or bytes: import it with their asset loader.
      "./progress_outbox_bg.wasm": "./progress_outbox_bg.wasm",
      "./package.json": "./package.json",
    },
    main: "./index.js",
    module: "./index.js",
    types: "./index.d.ts",
    // No module of the package does anything at import (the glue and the snippets only declare;
    // index.js builds a proxy): a bundler may drop the whole package when nothing of it is used.
    sideEffects: false,
    files,
  };
  writeFileSync(join(pkgDir, "package.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

/** `npm pack` of the prepared pkg/; returns the tarball's path and its file list. */
export async function pack({ dryRun = false, quiet = false } = {}) {
  const manifest = await preparePackage();
  const out = execFileSync("npm", ["pack", join(root, "pkg"), "--pack-destination", root, "--json", ...(dryRun ? ["--dry-run"] : [])], {
    cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
  });
  const [info] = JSON.parse(out);
  const listed = info.files.map((f) => f.path);
  const missing = REQUIRED.filter((f) => !listed.includes(f));
  if (missing.length) throw new Error(`the tarball lacks ${missing.join(", ")}`);
  if (listed.includes("files.json")) throw new Error("the tarball holds files.json (the demo's precache list)");
  const tarball = join(root, info.filename);
  if (!quiet) {
    for (const f of info.files) console.log(`[pack] ${String(f.size).padStart(8)}  ${f.path}`);
    console.log(`[pack] ${info.files.length} files, ${(info.size / 1024).toFixed(1)} KB packed, ${(info.unpackedSize / 1024).toFixed(1)} KB unpacked`);
    console.log(dryRun ? `[pack] dry run: would write ${tarball}` : `[pack] wrote ${tarball}\n[pack] publish with: npm publish ${info.filename}`);
  }
  return { tarball, files: listed, manifest, size: info.size, unpackedSize: info.unpackedSize };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  try {
    if (args.includes("--prepare")) {
      const m = await preparePackage();
      console.log(`[pack] pkg/ is the package ${m.name}@${m.version} (index.js entry, exports map, licences, README)`);
    } else {
      await pack({ dryRun: args.includes("--dry-run") });
    }
  } catch (e) {
    console.error(`[pack] ${e.message}`);
    process.exit(1);
  }
}
