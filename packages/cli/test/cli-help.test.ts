import { describe, expect, it } from "vitest"
import { cleanEnv, failsWithOneLine, run } from "../../broker/test/support/cli.js"

// The built binary, a few runs: every command's help is checked in-process by Help.test.ts.
const connect = (...args: ReadonlyArray<string>) => run(args, cleanEnv())
const widest = (text: string): number => Math.max(...text.split("\n").map((line) => line.length))
const SLOW = 120_000

describe("connect --help", () => {
  it(
    "fits a terminal: at most 40 lines of at most 100 columns, and is what connect alone prints",
    async () => {
      const help = await connect("--help")
      expect(help.code).toBe(0)
      expect(help.stderr).toBe("")
      expect(help.stdout.trimEnd().split("\n").length).toBeLessThanOrEqual(40)
      expect(widest(help.stdout)).toBeLessThanOrEqual(100)
      expect(help.stdout).not.toContain("\u001b[")
      expect(help.stdout).toMatchSnapshot()
      const alone = await connect()
      expect(alone.code).toBe(0)
      expect(alone.stdout).toBe(help.stdout)
    },
    SLOW
  )

  it(
    "prints a command's help, with its usage from connect",
    async () => {
      const help = await connect("connectors", "create", "--help")
      expect(help.code).toBe(0)
      expect(help.stdout).toContain("Usage: connect connectors create [options]")
      expect(widest(help.stdout)).toBeLessThanOrEqual(100)
    },
    SLOW
  )
})

describe("the command line", () => {
  it(
    "takes --url, --token and --format before the command as after it",
    async () => {
      const url = "http://127.0.0.1:9"
      const before = await connect(
        "--url",
        url,
        "--token",
        "ck_x",
        "--format",
        "json",
        "token",
        "a/b",
        "--subject",
        "app"
      )
      expect(before.code).toBe(2)
      expect(JSON.parse(before.stderr).error.message).toContain(`The Connect server at ${url} is unavailable`)
      const logLevel = await connect(
        "token",
        "a/b",
        "--subject",
        "app",
        "--url",
        url,
        "--token",
        "x",
        "--log-level",
        "error"
      )
      failsWithOneLine(logLevel)
      expect(logLevel.stderr).toContain(`The Connect server at ${url} is unavailable`)
    },
    SLOW
  )

  it(
    "names the flag and its values when a choice is given another value; as JSON with --format json",
    async () => {
      const plain = await connect("token", "acme/api", "--format", "yaml")
      failsWithOneLine(plain)
      expect(plain.stderr).toBe('--format must be one of plain, json, not "yaml"\n')
      const json = await connect("token", "acme/api", "--subject", "nobody", "--format", "json")
      expect(json.code).toBe(2)
      expect(json.stdout).toBe("")
      expect(JSON.parse(json.stderr)).toEqual({
        error: { code: "usage", message: '--subject must be one of app, user, not "nobody"' }
      })
    },
    SLOW
  )

  it(
    "prints @effect/cli's own usage errors as JSON with --format json",
    async () => {
      const result = await connect("token", "acme/api", "--subject", "app", "--bogus", "--format", "json")
      expect(result.code).toBe(2)
      expect(JSON.parse(result.stderr)).toEqual({
        error: { code: "usage", message: "Received unknown argument: '--bogus'" }
      })
    },
    SLOW
  )
})

describe("connect completions", () => {
  it(
    "prints the completion script of a shell",
    async () => {
      const bash = await connect("completions", "bash")
      expect(bash.code).toBe(0)
      expect(bash.stdout).toContain("complete -F _connect_bash_completions")
      expect(bash.stdout).toContain("revoke-tokens")
      const fish = await connect("completions", "fish")
      expect(fish.code).toBe(0)
      expect(fish.stdout).toContain("complete -c connect")
    },
    SLOW
  )
})
