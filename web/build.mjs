// Bundle the dashboard into the Python package: src/sysmonstm/gateway/static/.
// Output: index.html (no-cache) plus content-hashed assets/app-<hash>.js|css (cache forever).
// `node build.mjs --watch` rebuilds on change (for development with `sysmonstm up`).
import { readFile, writeFile, rm, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, "../src/sysmonstm/gateway/static");
const watch = process.argv.includes("--watch");

const writeIndex = {
  name: "write-index",
  setup(build) {
    build.onEnd(async (result) => {
      if (result.errors.length) return;
      const outputs = Object.keys(result.metafile.outputs).map((p) => path.resolve(p));
      const rel = (ext) => {
        const file = outputs.find((p) => p.endsWith(ext) && !p.endsWith(".map"));
        return "/" + path.relative(outDir, file).split(path.sep).join("/");
      };
      const html = (await readFile(path.join(here, "src/index.html"), "utf8"))
        .replace("%APP_CSS%", rel(".css"))
        .replace("%APP_JS%", rel(".js"));
      await writeFile(path.join(outDir, "index.html"), html);
      console.log(`dashboard built into ${outDir}`);
    });
  },
};

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });

const options = {
  entryPoints: { app: path.join(here, "src/main.js") },
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: !watch,
  sourcemap: true,
  metafile: true,
  outdir: path.join(outDir, "assets"),
  entryNames: "[name]-[hash]",
  logLevel: "warning",
  plugins: [writeIndex],
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("watching web/src ...");
} else {
  await esbuild.build(options);
}
