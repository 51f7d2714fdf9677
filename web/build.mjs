// Builds the Mini App into ../api/webapp/: index.html plus content-hashed files under assets/.
// Deterministic: the same sources and lock file give byte-identical output, which CI checks by
// rebuilding and diffing the committed files.
import * as esbuild from "esbuild";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "api", "webapp");
const assets = join(out, "assets");

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["src/main.ts"],
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2020", "chrome87", "safari14", "firefox78"],
  minify: true,
  sourcemap: false,
  legalComments: "none",
  charset: "utf8",
  outdir: assets,
  entryNames: "[name]-[hash]",
  chunkNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.entries(result.metafile.outputs);
const entry = outputs.find(([, meta]) => meta.entryPoint === "src/main.ts");
if (!entry) throw new Error("esbuild produced no entry file");
const [script, meta] = entry;
const style = meta.cssBundle;
if (!style) throw new Error("esbuild produced no stylesheet");
const href = (path) => relative(out, join(here, path)).split("\\").join("/");

// The chunks the entry imports statically are fetched at once, not one after the other.
const preloads = meta.imports
  .filter((item) => item.kind === "import-statement")
  .map((item) => `<link rel="modulepreload" href="${href(item.path)}">`)
  .join("\n");
const page = readFileSync(join(here, "index.html"), "utf8")
  .replace("%SCRIPT%", href(script))
  .replace("%STYLE%", href(style))
  .replace("%PRELOADS%", preloads);
writeFileSync(join(out, "index.html"), page);

// The licences of the packages bundled into the built files, as their MIT/ISC terms ask.
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (match) packages.add(match[1]);
}
const notices = [...packages].sort().map((name) => {
  const base = join(here, "node_modules", name);
  const { version, license } = JSON.parse(readFileSync(join(base, "package.json"), "utf8"));
  const file = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"].find((f) => existsSync(join(base, f)));
  const text = file ? readFileSync(join(base, file), "utf8").trim() : `License: ${license}`;
  return `${name}@${version}\n\n${text}\n`;
});
writeFileSync(join(out, "THIRD_PARTY_LICENSES.txt"), notices.join("\n" + "-".repeat(72) + "\n\n"));
