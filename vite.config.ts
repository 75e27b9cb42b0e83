import { fileURLToPath } from "node:url"
import { defineConfig } from "vite"

const at = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/**
 * The workspace's packages resolve to their sources, so that `npm start` and the
 * tests run one copy of each module without a build (published, they resolve to
 * their `dist/` through the exports maps).
 */
export const alias = [
  { find: /^effect-connect$/, replacement: at("./src/index.ts") },
  { find: /^effect-connect\/(.+)$/, replacement: at("./src/$1.ts") },
  { find: /^@effect-connect\/broker$/, replacement: at("./packages/broker/src/index.ts") },
  { find: /^@effect-connect\/broker\/(.+)$/, replacement: at("./packages/broker/src/$1.ts") }
]

export default defineConfig({ resolve: { alias } })
