/**
 * Headless Chromium for the tests of pages, driven by `playwright-core`: the
 * system's browser (`/usr/bin/chromium`), a fresh profile per launch, and
 * nothing of the browser's own background traffic. Where no browser exists
 * the suites that need one are skipped, unless `CONNECT_TEST_REQUIRE_BROWSER=1`
 * (CI) makes that a failure.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium } from "playwright-core"

/** Where the browser is expected. */
export const CHROMIUM_PATH = "/usr/bin/chromium"

/** Whether the browser is there. */
export const browserAvailable: boolean = existsSync(CHROMIUM_PATH)

/** Whether a missing browser fails the run instead of skipping its suites. */
export const browserRequired: boolean = process.env.CONNECT_TEST_REQUIRE_BROWSER === "1"

/** The one line a skipped suite says. */
export const NO_BROWSER = `skipped: no browser at ${CHROMIUM_PATH} (apt-get install -y chromium; CONNECT_TEST_REQUIRE_BROWSER=1 fails instead)`

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** A browser with a fresh profile, at a desktop size; `close` removes the profile. */
export const launchBrowser = async (): Promise<{
  readonly context: BrowserContext
  readonly close: () => Promise<void>
}> => {
  const profile = mkdtempSync(join(tmpdir(), "connect-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 }
  })
  return {
    context,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}
