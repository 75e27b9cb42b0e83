import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { formatOf, prepare } from "../src/Argv.js"
import { helpTree } from "../src/Cli.js"

const ready = (...args: ReadonlyArray<string>) => Either.getOrThrow(prepare(helpTree, args))
const refused = (...args: ReadonlyArray<string>) => Either.flip(prepare(helpTree, args)).pipe(Either.getOrThrow).message

describe("Argv", () => {
  it("moves --url, --token and --format typed before the command after it", () => {
    const prepared = ready("--url", "http://b", "--token=ck", "--format", "json", "token", "acme/api", "--", "x")
    expect(prepared.args).toEqual([
      "token",
      "acme/api",
      "--url",
      "http://b",
      "--token=ck",
      "--format",
      "json",
      "--",
      "x"
    ])
    expect(prepared.command.path).toEqual(["token"])
    expect(prepared.format).toBe("json")
    expect(ready("--log-level", "debug", "connectors", "list").args).toEqual([
      "--log-level",
      "debug",
      "connectors",
      "list"
    ])
  })

  it("asks for help with -h or --help, and for a group or the top level without a command", () => {
    expect(ready("token", "--help")).toMatchObject({ help: true, command: { path: ["token"] } })
    expect(ready("connectors", "create", "-h").command.path).toEqual(["connectors", "create"])
    expect(ready("connectors").help).toBe(true)
    expect(ready().help).toBe(true)
    expect(ready("--version").help).toBe(false)
    expect(ready("--completions", "bash").args).toEqual(["--completions", "bash"])
    expect(ready("token", "acme/api").help).toBe(false)
  })

  it("names the flag and its values when a choice is given another value", () => {
    expect(refused("token", "acme/api", "--format", "yaml")).toBe('--format must be one of plain, json, not "yaml"')
    expect(refused("--format=yaml", "connectors", "list")).toBe('--format must be one of plain, json, not "yaml"')
    expect(refused("token", "a", "--subject", "bot")).toBe('--subject must be one of app, user, not "bot"')
    expect(refused("events", "--log-level", "loud")).toContain("--log-level must be one of all, trace, debug")
    expect(refused("token", "acme/api", "--format")).toBe("--format needs a value: one of plain, json")
    expect(refused("completions", "sh")).toBe('<shell> must be one of bash, zsh, fish, not "sh"')
    expect(ready("completions", "zsh").help).toBe(false)
  })

  it("names an unknown command, and the nearest one", () => {
    expect(refused("connectors", "lisst")).toBe(
      'connect connectors has no command "lisst": did you mean "list"? Its commands: list, show, create, remove'
    )
    expect(refused("tokn", "acme/api")).toContain('connect has no command "tokn": did you mean "token"?')
    expect(refused("frobnicate")).not.toContain("did you mean")
  })

  it("refuses a global option given to a command that does not take it", () => {
    expect(refused("--url", "http://b", "serve")).toBe("--url does not apply to connect serve")
  })

  it("reads the format before or after the command, not after --", () => {
    expect(formatOf(["token", "--format", "json"])).toBe("json")
    expect(formatOf(["--format=json", "token"])).toBe("json")
    expect(formatOf(["token", "--", "--format", "json"])).toBe("plain")
  })
})
