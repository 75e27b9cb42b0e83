import { defineConfig } from "vitest/config"
import { BaseSequencer, type TestSpecification } from "vitest/node"
import { alias } from "./vite.config.js"

/**
 * The files that take longest (they start brokers, browsers and the CLI as processes), slowest first, as measured on a
 * 2-core machine: started first, none of them ends a run alone while the other workers are idle. Vitest orders a
 * fresh clone's files by size, and puts these in the middle.
 */
const SLOWEST = [
  "crash.test.ts",
  "documented-commands.test.ts",
  "cli-authorize.test.ts",
  "presets.test.ts",
  "package.test.ts",
  "webhook-deliveries.test.ts",
  "cli-help.test.ts",
  "refresh.test.ts",
  "operator-dashboard.test.ts",
  "installation.test.ts"
]

const rank = (file: TestSpecification) => {
  const index = SLOWEST.findIndex((name) => file.moduleId.endsWith(`/${name}`))
  return index === -1 ? SLOWEST.length : index
}

/** Vitest's order (failed first, then longest or largest first), with the slowest files ahead of it. */
class SlowestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b))
  }
}

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
    sequence: { sequencer: SlowestFirst },
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
