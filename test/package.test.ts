import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"

const run = promisify(execFile)
const root = fileURLToPath(new URL("..", import.meta.url))

// These run the built package (`npm test` builds first) in a separate Node process, as a user's code would.
describe("the built package", () => {
  it("resolves its three entry points by name through the exports map", async () => {
    const script = `
      const main = await import("effect-connect")
      const promise = await import("effect-connect/promise")
      const testing = await import("effect-connect/testing")
      console.log(JSON.stringify({
        main: ["getToken", "getTokenResponse", "revokeToken", "deleteTokenCacheEntry", "startAuthorization",
          "getConnectorMetadata", "ConnectClient", "TokenCache", "UserAuthorizationRequired"].filter((n) => typeof main[n] === "undefined"),
        promise: ["getToken", "getTokenResponse", "revokeToken", "deleteTokenCacheEntry", "startAuthorization",
          "getConnectorMetadata", "UserAuthorizationRequiredError", "ConnectorInstallationRequiredError", "NoValidTokenError",
          "ClientNotLinkedToProjectError", "ClientNotEnabledForEnvironmentError"].filter((n) => typeof promise[n] === "undefined"),
        testing: ["ConnectTest", "raw"].filter((n) => typeof testing[n] === "undefined"),
        sameClass: promise.UserAuthorizationRequiredError === main.UserAuthorizationRequired
      }))`
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: root })
    expect(JSON.parse(stdout)).toEqual({ main: [], promise: [], testing: [], sameClass: true })
  })

  it("runs the npm start walkthrough to the end, showing tokens only shortened", async () => {
    const { stdout } = await run(process.execPath, ["examples/quickstart.mjs"], { cwd: root, timeout: 60_000 })
    expect(stdout).toContain("500 callers, 1 request to the server")
    expect(stdout).toContain("UserAuthorizationRequired")
    expect(stdout).toContain("ConnectorNotFound")
    expect(stdout).toContain("Every step behaved as described.")
    expect(stdout).not.toContain("ck_quickstart_demo_key")
    // Tokens are printed as their first ten characters and an ellipsis, never whole.
    expect(stdout).not.toMatch(/token-\d+-[a-z0-9]{6,}/)
  })
})
