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
})

// `npm start` runs the sources with vite-node: an OAuth provider, the broker and the SDK, in one process.
describe("the npm start walkthrough", () => {
  it("shows every step, exits 0, and prints tokens only shortened and no caller key", async () => {
    // execFile rejects when the process exits with anything but 0.
    const { stdout } = await run(process.execPath, ["node_modules/vite-node/vite-node.mjs", "examples/quickstart.ts"], {
      cwd: root,
      timeout: 60_000
    })
    const tokenIds = (line: string | undefined) => /\(tokenId (stk_[\w-]+)\)/.exec(line ?? "")?.[1]
    const lines = stdout.split("\n")
    const first = lines.find((line) => line.startsWith("first call:"))
    const second = lines.find((line) => line.startsWith("second call:"))
    expect(tokenIds(first)).toBeDefined()
    expect(tokenIds(second)).toBe(tokenIds(first))
    expect(second).toContain("from the SDK's cache")

    expect(stdout).toMatch(
      /UserAuthorizationRequired \(user_authorization_required\)[^\n]*\n {2}http:\/\/127\.0\.0\.1:\d+\//
    )
    expect(stdout).toContain("opening the link")
    expect(stdout).toContain("signing in as ada")
    expect(stdout).toContain("consenting")
    expect(stdout).toContain("prompt=consent")
    expect(stdout).toContain("Your account is connected")
    const adaToken = tokenIds(lines.find((line) => line.startsWith("asking again: ada's token")))
    expect(adaToken).toBeDefined()

    const providerRevoked = Number(/providerRevoked=(\d+)/.exec(stdout)?.[1] ?? 0)
    expect(providerRevoked).toBeGreaterThanOrEqual(1)
    expect(stdout).toContain("the revoked token is active=false")
    const renewed = tokenIds(lines.find((line) => line.startsWith("the next request:")))
    expect(renewed).toBeDefined()
    expect(renewed).not.toBe(adaToken)

    expect(stdout).toContain("an unknown connector: ConnectorNotFound (not_found)")
    expect(stdout).toContain("ClientNotEnabledForEnvironment (client_not_enabled_for_environment)")
    expect(stdout).toContain("Every step behaved as described (exit 0).")

    // Tokens appear as their first ten characters and an ellipsis; no whole token, no caller key, no client secret.
    expect(stdout.match(/\S+…/g)?.every((shown) => /^[\w-]{10}…$/.test(shown))).toBe(true)
    expect(stdout).not.toMatch(/[\w-]{40,}/)
    expect(stdout).not.toMatch(/ck_\w+/)
    expect(stdout).not.toContain("broker-secret")
  }, 60_000)
})
