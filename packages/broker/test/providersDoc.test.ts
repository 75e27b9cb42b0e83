import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { PROVIDERS_DOC, renderProvidersDoc } from "../scripts/providersDoc.js"
import { presets } from "../src/providers/Presets.js"

describe("docs/providers.md", () => {
  it("is what the catalogue generates (run npm run docs:providers after changing a preset)", () => {
    expect(readFileSync(PROVIDERS_DOC, "utf8")).toBe(renderProvidersDoc())
  })

  it("has a row per preset, with its documentation link", () => {
    const page = renderProvidersDoc()
    for (const preset of presets) expect(page).toContain(`| \`${preset.name}\` | ${preset.title} |`)
    for (const preset of presets) expect(page).toContain(`[docs](${preset.docs})`)
  })
})
