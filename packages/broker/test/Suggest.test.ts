import { describe, expect, it } from "vitest"
import { closest, distance, threshold } from "../src/Suggest.js"

describe("Suggest", () => {
  it("counts insertions, deletions, substitutions and swaps of neighbours as one edit each", () => {
    expect(distance("acme/api", "acme/api")).toBe(0)
    expect(distance("acme/apii", "acme/api")).toBe(1)
    expect(distance("acme/ap", "acme/api")).toBe(1)
    expect(distance("acme/apu", "acme/api")).toBe(1)
    expect(distance("acme/aip", "acme/api")).toBe(1)
    expect(distance("", "abc")).toBe(3)
    expect(distance("kitten", "sitting")).toBe(3)
  })

  it("suggests the nearest name within the threshold, whatever the case, and nothing unrelated", () => {
    const names = ["acme/api", "github", "slack/acme"]
    expect(closest("acme/apii", names)).toBe("acme/api")
    expect(closest("ACME/API", names)).toBe("acme/api")
    expect(closest("githbu", names)).toBe("github")
    expect(closest("acme/nope", names)).toBeUndefined()
    expect(closest("gh", names)).toBeUndefined()
    expect(closest("acme/api", names)).toBeUndefined()
  })

  it("allows one edit for short names, a quarter of the length for longer ones, at most three", () => {
    expect(threshold("ab")).toBe(1)
    expect(threshold("acme/api")).toBe(2)
    expect(threshold("a-very-long-connector-name")).toBe(3)
  })
})
