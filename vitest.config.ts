import { defineConfig } from "vitest/config"
import { alias } from "./vite.config.js"

export default defineConfig({
  resolve: { alias },
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    // Asks the test Postgres once whether it answers; its cases are skipped, said in one line, when it does not.
    globalSetup: ["packages/broker/test/support/postgresSetup.ts"],
    // Most suites wait on sockets and child processes, not the CPU (a run keeps two cores about two-thirds busy with
    // two workers): three files at a time on a 2-core machine. As many workers from the start: vitest 3.2 ends an idle
    // extra worker with an unhandled "Terminating worker thread" when files do not run isolated.
    maxWorkers: 3,
    minWorkers: 3,
    // The files of a worker share its process and the modules they import (effect, the SDK, the broker): imported
    // afresh in a new process for every file, they cost more than most files' tests. A file restores what it changes
    // (globalThis.fetch, process.env, the working directory) and names its connectors, users and ports its own.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
