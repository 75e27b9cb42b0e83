import { describe, expect, it } from "vitest"
import { cleanEnv, run } from "../../broker/test/support/cli.js"

describe("connect providers", () => {
  it("lists every preset, as a table and as JSON", async () => {
    const plain = await run(["providers", "list"], cleanEnv())
    expect(plain.code).toBe(0)
    const lines = plain.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^PROVIDER\s+TITLE\s+GRANTS\s+ROTATION\s+REVOCATION$/)
    expect(lines.length).toBeGreaterThan(25)
    expect(plain.stdout).toMatch(/^github-app\s+GitHub App\s+/m)
    const json = await run(["providers", "list", "--format", "json"], cleanEnv())
    const presets = JSON.parse(json.stdout) as ReadonlyArray<{ readonly name: string }>
    expect(presets.map((preset) => preset.name)).toContain("slack")
  })

  it("shows one preset with its quirks and documentation; an unknown one exits 2 naming the known ones", async () => {
    const slack = await run(["providers", "show", "slack"], cleanEnv())
    expect(slack.code).toBe(0)
    expect(slack.stdout).toMatch(/^token endpoint:\s+https:\/\/slack\.com\/api\/oauth\.v2\.access$/m)
    expect(slack.stdout).toMatch(/^installation source:\s+token answer team\.id$/m)
    expect(slack.stdout).toMatch(/^answer:\s+json, errors ok_false, expires_in number$/m)
    expect(slack.stdout).toMatch(/^documentation:\s+https:\/\//m)
    expect(slack.stdout).not.toMatch(/^refresh endpoint:/m)
    const figma = await run(["providers", "show", "figma"], cleanEnv())
    expect(figma.stdout).toMatch(/^refresh endpoint:\s+https:\/\/api\.figma\.com\/v1\/oauth\/refresh$/m)
    const twitch = await run(["providers", "show", "twitch"], cleanEnv())
    expect(twitch.stdout).toMatch(/^device scope parameter:\s+scopes$/m)
    expect(twitch.stdout).toMatch(/^answer:\s+json, errors message, expires_in number$/m)
    const shopify = await run(["providers", "show", "shopify"], cleanEnv())
    expect(shopify.stdout).toMatch(/^token params:\s+expiring=1$/m)
    expect(shopify.stdout).toMatch(/^rotation:\s+always$/m)
    expect(slack.stdout).not.toMatch(/^token params:/m)
    const unknown = await run(["providers", "show", "slak"], cleanEnv())
    expect(unknown.code).toBe(2)
    expect(unknown.stderr.trim()).toMatch(/^Unknown provider "slak": expected one of .*slack.*$/)
  })
})
