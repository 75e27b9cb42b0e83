import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Console, Effect, Either } from "effect"
import * as Logging from "../src/Logging.js"

/** A Console that keeps what goes to stdout (`log`) and stderr (`error`); loggers use only its `unsafe` side. */
const recordingConsole = () => {
  const out: Array<string> = []
  const err: Array<string> = []
  const unsafe = {
    ...console,
    log: (...args: Array<unknown>) => {
      out.push(args.join(" "))
    },
    error: (...args: Array<unknown>) => {
      err.push(args.join(" "))
    }
  }
  return { out, err, console: { [Console.TypeId]: Console.TypeId, unsafe } as unknown as Console.Console }
}

const formatOf = (env: Record<string, string>) =>
  Effect.runSync(
    Effect.either(Effect.withConfigProvider(Logging.formatConfig, ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

describe("Logging", () => {
  it("reads CONNECT_LOG_FORMAT, and refuses a format it does not know", () => {
    expect(formatOf({ CONNECT_LOG_FORMAT: "json" })).toEqual(Either.right("json"))
    expect(formatOf({ CONNECT_LOG_FORMAT: "logfmt" })).toEqual(Either.right("logfmt"))
    expect(formatOf({})).toEqual(Either.right(Logging.defaultFormat()))
    expect(Either.isLeft(formatOf({ CONNECT_LOG_FORMAT: "xml" }))).toBe(true)
  })

  it.effect("json: one JSON object per line on stderr, with the annotations; nothing on stdout", () =>
    Effect.gen(function* () {
      const recording = recordingConsole()
      yield* Effect.logWarning("provider call failed").pipe(
        Effect.annotateLogs({ requestId: "r-1", connector: "acme/api" }),
        Effect.provide(Logging.layer("json")),
        Effect.withConsole(recording.console)
      )
      expect(recording.out).toEqual([])
      expect(recording.err).toHaveLength(1)
      const line = JSON.parse(recording.err[0] ?? "") as { message: unknown; logLevel: unknown; annotations: unknown }
      expect(line).toMatchObject({
        message: "provider call failed",
        logLevel: "WARN",
        annotations: { requestId: "r-1", connector: "acme/api" }
      })
    })
  )

  it.effect("logfmt: key=value on stderr", () =>
    Effect.gen(function* () {
      const recording = recordingConsole()
      yield* Effect.log("hello").pipe(
        Effect.annotateLogs("requestId", "r-2"),
        Effect.provide(Logging.layer("logfmt")),
        Effect.withConsole(recording.console)
      )
      expect(recording.out).toEqual([])
      expect(recording.err[0]).toMatch(/level=INFO .*message=hello requestId=r-2/)
    })
  )

  it("CONNECT_LOG_LEVEL: logs from the level it names, in any case; without it, as before", () => {
    // Each case in a run of its own: the loggers a layer installs stay with the fiber that provided it.
    const linesWith = (env: Record<string, string>) => {
      const recording = recordingConsole()
      const provider = ConfigProvider.fromMap(new Map(Object.entries({ CONNECT_LOG_FORMAT: "logfmt", ...env })))
      const run = Effect.all([Effect.logInfo("info line"), Effect.logWarning("warning line")]).pipe(
        Effect.provide(Logging.layerConfig),
        Effect.withConfigProvider(provider),
        Effect.withConsole(recording.console),
        Effect.either
      )
      return Either.map(Effect.runSync(run), () => recording.err.map((line) => /message="?([a-z ]+)/.exec(line)?.[1]))
    }
    expect(linesWith({})).toEqual(Either.right(["info line", "warning line"]))
    expect(linesWith({ CONNECT_LOG_LEVEL: "WARN" })).toEqual(Either.right(["warning line"]))
    expect(linesWith({ CONNECT_LOG_LEVEL: "warning" })).toEqual(Either.right(["warning line"]))
    expect(linesWith({ CONNECT_LOG_LEVEL: "none" })).toEqual(Either.right([]))
    expect(linesWith({ CONNECT_LOG_LEVEL: "debug" })).toEqual(Either.right(["info line", "warning line"]))
    const wrong = linesWith({ CONNECT_LOG_LEVEL: "loud" })
    expect(Either.isLeft(wrong) && String(wrong.left)).toMatch(
      /CONNECT_LOG_LEVEL.*expected one of all, trace, debug, info, warn, error, fatal or none, not "loud"/
    )
  })
})
