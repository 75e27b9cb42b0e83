import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { findPreset, Preset, presetNames, presets } from "../../src/providers/Presets.js"

describe("the catalogue", () => {
  it("has at least 25 presets, each valid, named once, with a documentation link", () => {
    expect(presets.length).toBeGreaterThanOrEqual(25)
    for (const preset of presets) expect(() => Schema.decodeUnknownSync(Preset)(preset)).not.toThrow()
    expect(new Set(presets.map((preset) => preset.name)).size).toBe(presets.length)
    for (const name of ["slack", "github", "github-app", "google", "microsoft", "jira", "confluence", "oidc"]) {
      expect(findPreset(name)?.name).toBe(name)
    }
    expect(findPreset("nope")).toBeUndefined()
    expect(presetNames()).toEqual([...presetNames()].sort())
  })

  it("every endpoint is https, and {tenantId} appears only where the preset says what it is", () => {
    for (const preset of presets) {
      const { settings } = preset
      const endpoints = [
        settings.authorizationEndpoint,
        settings.tokenEndpoint,
        settings.revocationEndpoint,
        settings.deviceAuthorizationEndpoint
      ].filter((value): value is string => value !== undefined && value !== "")
      for (const endpoint of endpoints) {
        expect(endpoint, preset.name).toMatch(/^https:\/\//)
        if (endpoint.includes("{tenantId}")) expect(preset.tenant, preset.name).toBeDefined()
      }
      if (preset.discovery !== true) expect(settings.tokenEndpoint, preset.name).not.toBe("")
    }
  })
})
