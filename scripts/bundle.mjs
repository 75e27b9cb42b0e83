/**
 * Bundles the two programs, the broker (`packages/broker/dist/main.js`) and the `connect` command
 * (`packages/cli/dist/main.js`), each into one file over what `tsc` emitted.
 *
 * Why: Node's ESM loader resolves, reads and links every module file on its own, and the programs import about
 * 1,500 of them (effect, @effect/platform, @effect/sql, …): a cold start spent 2–3 s of CPU there before running a
 * line of ours. One file starts in about a third of that (docs/benchmarks.md). The libraries' modules
 * (`dist/*.js` beside `main.js`) stay unbundled for applications that import them.
 *
 * better-sqlite3 stays outside (a native addon, found beside the package as a dependency); pg-native is an optional
 * peer of pg that the broker does not use.
 */
import { build } from "esbuild"

const programs = ["packages/broker", "packages/cli"]

for (const pkg of programs) {
  await build({
    entryPoints: [`${pkg}/src/main.ts`],
    outfile: `${pkg}/dist/main.js`,
    allowOverwrite: true,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // Stack traces map back to the sources (node --enable-source-maps); their text is not copied into the map.
    sourcemap: true,
    sourcesContent: false,
    external: ["better-sqlite3", "pg-native"],
    // Bundled CommonJS dependencies (pg, …) call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __connectRequire } from 'node:module'; const require = __connectRequire(import.meta.url);"
    },
    logLevel: "warning"
  })
}
