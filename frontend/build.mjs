// The one definition of the browser bundles, used by `make frontend` and the Dockerfile alike:
// every top-level src/X.js is a page feature's entry point and becomes static/X.js.
//
//   node build.mjs [--outdir DIR]     (from frontend/; `npm run build` does the same)
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const flag = process.argv.indexOf("--outdir");
const outdir = flag >= 0 ? process.argv[flag + 1] : join(here, "static");
const entryPoints = readdirSync(join(here, "src"))
  .filter((name) => name.endsWith(".js"))
  .map((name) => join(here, "src", name));

await build({
  entryPoints,
  outdir,
  bundle: true,
  minify: true,
  format: "iife",
  logLevel: "warning",
});
for (const entry of entryPoints) {
  console.log(`Built ${join(outdir, entry.slice(join(here, "src").length + 1))}`);
}
