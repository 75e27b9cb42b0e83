import { defineConfig } from "vitest/config"
import { alias } from "./vite.config.js"

export default defineConfig({
  resolve: { alias },
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
