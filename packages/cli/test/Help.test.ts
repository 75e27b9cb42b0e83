import { describe, expect, it } from "vitest"
import { helpTree } from "../src/Cli.js"
import { type CommandHelp, renderCommand, wrap } from "../src/Help.js"

const all = (help: CommandHelp): ReadonlyArray<CommandHelp> => [help, ...help.children.flatMap(all)]
const commands = all(helpTree).filter((help) => help.path.length > 0)
const widest = (text: string): number => Math.max(...text.split("\n").map((line) => line.length))

describe("Help", () => {
  it("knows every command, groups' children included", () => {
    const paths = commands.map((help) => help.path.join(" "))
    expect(paths).toEqual(expect.arrayContaining(["token", "connectors create", "webhooks deliveries", "completions"]))
    expect(paths.length).toBeGreaterThanOrEqual(28)
  })

  it("renders every command within 100 columns, with its usage from connect and an example, without boilerplate", () => {
    for (const help of commands) {
      const path = help.path.join(" ")
      const text = renderCommand(help)
      expect(widest(text), path).toBeLessThanOrEqual(100)
      expect(text, path).toContain(`Usage: connect ${path}`)
      expect(text, path).toMatch(/Examples?:\n {2}\S/)
      for (const boilerplate of ["A user-defined piece of text", "--wizard", "--completions", "This setting is"]) {
        expect(text, path).not.toContain(boilerplate)
      }
    }
  })

  it("says each option's default, and which are required and which repeat", () => {
    const token = commands.find((help) => help.path.join(" ") === "token")
    const subject = token?.options.find((option) => option.flag === "--subject")
    expect(subject).toMatchObject({ choices: ["app", "user"], default: "user", required: false, repeats: false })
    expect(token?.options.find((option) => option.flag === "--resource")).toMatchObject({
      repeats: true,
      required: false
    })
    const attach = commands.find((help) => help.path.join(" ") === "attach")
    expect(attach?.options.find((option) => option.flag === "--project")?.required).toBe(true)
    expect(renderCommand(attach ?? helpTree)).toContain("Usage: connect attach <connector> --project <text> [options]")
    const deliveries = commands.find((help) => help.path.join(" ") === "webhooks deliveries")
    expect(deliveries?.options.find((option) => option.flag === "--limit")?.default).toBe("50")
    const events = commands.find((help) => help.path.join(" ") === "events")
    expect(events?.options.find((option) => option.flag === "--follow")).toMatchObject({ alias: "-f", required: false })
  })

  it("wraps at spaces within the width", () => {
    expect(wrap("aaa bbb ccc", 7)).toEqual(["aaa bbb", "ccc"])
  })
})
