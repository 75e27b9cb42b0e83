/**
 * What `connect authorize` and `connect install` share: the link's lifetime
 * option, opening the link in the browser on a terminal, and waiting with a
 * spinner until the request is completed, failed, expired or awaits the
 * application's confirmation.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { Clock, Config, Console, Duration, Effect, Either, Option, Ref, Schedule } from "effect"
import type { AuthorizationResponse, AuthorizationState, AuthorizationStatus } from "effect-connect/Authorization"
import { ConnectClient } from "effect-connect/ConnectClient"
import type { ConnectError } from "effect-connect/ConnectError"
import { CliExit, ExitCode, report } from "./Exit.js"

/** How often the status is read. */
const POLL_INTERVAL_MS = 1_500

/** How long after `expiresAt` a request that is still open is waited for (a code exchange under way, clock skew). */
const GRACE_MS = 30_000

/** The broker's default lifetime of a request, for a server that answers no `expiresAt`. */
export const DEFAULT_EXPIRES_IN_MS = 10 * 60_000

/** The broker's longest lifetime of a request. */
const MAX_EXPIRES_IN_MS = 60 * 60_000

const units: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000 }

/**
 * Reads `--expires-in`: whole minutes (`10`), or a whole number with a unit
 * (`90s`, `1500ms`, `10m`); more than 0 and at most 60 minutes. Milliseconds,
 * or why the text is refused.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseExpiresIn = (text: string): Either.Either<number, string> => {
  const match = /^\s*(\d+)\s*(ms|s|m)?\s*$/.exec(text)
  const amount = match?.[1]
  if (match === null || amount === undefined) {
    return Either.left(`--expires-in takes whole minutes (10) or a number with a unit (90s, 1500ms), not "${text}"`)
  }
  const ms = Number(amount) * (units[match[2] ?? "m"] ?? 60_000)
  if (ms <= 0) return Either.left("--expires-in must be more than 0")
  if (ms > MAX_EXPIRES_IN_MS) return Either.left("--expires-in is at most 60 minutes")
  return Either.right(ms)
}

/**
 * What a failed request's `error` means, in plain words.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describeFailure = (error: string | undefined): string => {
  switch (error) {
    case "access_denied":
      return "the user denied access at the provider (access_denied)"
    case "provider_refused":
      return "the provider refused the authorization code (provider_refused)"
    case "provider_unavailable":
      return "the provider could not be reached to complete it (provider_unavailable)"
    case "provider_error":
      return "the provider answered with an error (provider_error)"
    case "invalid_response":
      return "the provider sent the user back without a code (invalid_response)"
    case "no_tenant":
      return "the provider's answer named no tenant to install for (no_tenant)"
    case "tenant_mismatch":
      return "the admin consented for another tenant than the one asked for (tenant_mismatch)"
    case "interrupted":
      return "the Connect server stopped while completing it (interrupted)"
    case "connector_removed":
      return "the connector was removed meanwhile (connector_removed)"
    case "internal_error":
      return "the Connect server could not complete it; its log says why (internal_error)"
    case undefined:
      return "the server gave no reason"
    default:
      return `the server says: ${error}`
  }
}

/** `m:ss` of a number of milliseconds (0 at the least). */
const clockText = (ms: number): string => {
  const seconds = Math.max(0, Math.ceil(ms / 1000))
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`
}

const timeOfDay = (ms: number): string => new Date(ms).toLocaleTimeString()

/** The command that hands a URL to the desktop's browser. */
const browserCommand = (
  url: string
): { readonly command: string; readonly args: ReadonlyArray<string>; readonly verbatim: boolean } => {
  switch (process.platform) {
    case "darwin":
      return { command: "open", args: [url], verbatim: false }
    case "win32":
      // `start` is a built-in of cmd; its first quoted argument is a window title. cmd's metacharacters are escaped.
      return { command: "cmd", args: ["/c", "start", '""', url.replace(/[&^|<>()%!"]/g, "^$&")], verbatim: true }
    default:
      return { command: "xdg-open", args: [url], verbatim: false }
  }
}

/** Opens an http(s) URL in the browser, detached; a failure is ignored (the URL is printed anyway). */
const openInBrowser = (url: string): Effect.Effect<void> =>
  Effect.sync(() => {
    let protocol: string
    try {
      protocol = new URL(url).protocol
    } catch {
      return
    }
    if (protocol !== "https:" && protocol !== "http:") return
    const { command, args, verbatim } = browserCommand(url)
    try {
      const child = spawn(command, args, {
        detached: true,
        stdio: "ignore",
        windowsHide: true,
        windowsVerbatimArguments: verbatim
      })
      child.on("error", () => {})
      child.unref()
    } catch {
      // No browser to open: the URL is on the screen.
    }
  })

/** Whether the command runs on a terminal, outside CI: then it opens the browser. */
const interactive = Effect.gen(function* () {
  const ci = yield* Config.option(Config.string("CI")).pipe(Effect.orElseSucceed(() => Option.none<string>()))
  const inCi = Option.match(ci, {
    onNone: () => false,
    onSome: (value) => !["", "0", "false"].includes(value.trim().toLowerCase())
  })
  return process.stdout.isTTY === true && process.stderr.isTTY === true && !inCi
})

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"] as const
const clearLine = "\r\x1b[2K"

/**
 * Runs `effect` with a spinner on stderr when stderr is a terminal; `text`
 * says what is awaited. The line is cleared when `effect` ends, however.
 */
const withSpinner = <A, E, R>(text: Effect.Effect<string>, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (process.stderr.isTTY !== true) return effect
  let frame = 0
  const draw = Effect.flatMap(text, (line) =>
    Effect.sync(() => {
      process.stderr.write(`${clearLine}${frames[frame % frames.length] ?? "-"} ${line}`)
      frame++
    })
  )
  // Forked in the scope (not in an uninterruptible acquire) so that it can be stopped; then the line is cleared.
  return Effect.scoped(
    Effect.gen(function* () {
      yield* Effect.addFinalizer(() => Effect.sync(() => process.stderr.write(clearLine)))
      yield* Effect.forkScoped(Effect.repeat(draw, Schedule.spaced("100 millis")))
      return yield* effect
    })
  )
}

/**
 * A status the wait ends on.
 *
 * @since 0.1.0
 * @category models
 */
export type Final = AuthorizationStatus & { readonly status: Exclude<AuthorizationState, "pending" | "completing"> }

// `awaiting_confirmation` ends the wait too: only the application can confirm
// its user (with the code its return URL received), polling would not.
const isFinal = (status: AuthorizationStatus): status is Final =>
  status.status === "completed" ||
  status.status === "failed" ||
  status.status === "expired" ||
  status.status === "awaiting_confirmation"

/**
 * Reads the status every 1.5 seconds until it is final (or awaits the
 * application's confirmation), or until the request
 * is well past its expiry (then it reads as `expired`). A read the server
 * cannot answer right now is tried again a few times.
 */
const waitForOutcome = (
  started: AuthorizationResponse,
  expiresAt: number,
  seen: Ref.Ref<AuthorizationState>
): Effect.Effect<Final, ConnectError, ConnectClient> =>
  Effect.gen(function* () {
    const client = yield* ConnectClient
    const deadline = expiresAt + GRACE_MS
    const read = client.authorizationStatus(started.request, started.verifier).pipe(
      Effect.retry({
        while: (error) => error._tag === "ServiceUnavailable" || error._tag === "RateLimited",
        times: 3,
        schedule: Schedule.spaced("2 seconds")
      })
    )
    while (true) {
      const status = yield* read
      yield* Ref.set(seen, status.status)
      if (isFinal(status)) return status
      const now = yield* Clock.currentTimeMillis
      if (now >= deadline) return { request: started.request, status: "expired" } satisfies Final
      yield* Effect.sleep(Duration.millis(Math.min(POLL_INTERVAL_MS, deadline - now)))
    }
  })

/**
 * `--expires-in`: how long the link stays valid.
 *
 * @since 0.1.0
 * @category options
 */
export const expiresInOption = Options.text("expires-in").pipe(
  Options.withDescription("How long the link stays valid: minutes (10), or 90s, 1500ms; at most 60 minutes"),
  Options.mapEffect((text) =>
    Either.match(parseExpiresIn(text), {
      onLeft: (message) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message))),
      onRight: Effect.succeed
    })
  ),
  Options.optional
)

/**
 * Shows a started request's link (and device code), opens it in the browser
 * when interactive and not `noOpen`, then waits for its outcome with a
 * spinner. `intro` says who should open the link, `waiting` what is awaited.
 *
 * @since 0.1.0
 * @category utils
 */
export const awaitConsent = (
  started: AuthorizationResponse,
  options: {
    readonly expiresInMs: Option.Option<number>
    readonly noOpen: boolean
    readonly intro: string
    readonly waiting: string
  }
): Effect.Effect<Final, CliExit, ConnectClient> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const expiresAt = started.expiresAt ?? now + Option.getOrElse(options.expiresInMs, () => DEFAULT_EXPIRES_IN_MS)
    yield* Console.error(options.intro)
    yield* Console.error(started.url)
    if (started.deviceCode !== undefined) {
      yield* Console.error(
        `\n    Your code: ${started.deviceCode}\n\nEnter this code on that page if it asks for one, and check that it matches.`
      )
    }
    if (!options.noOpen && (yield* interactive)) {
      yield* openInBrowser(started.url)
      yield* Console.error("Opening it in your browser...")
    }
    if (process.stderr.isTTY !== true) {
      yield* Console.error(`Waiting ${options.waiting} (the link expires at ${timeOfDay(expiresAt)})...`)
    }
    const seen = yield* Ref.make<AuthorizationState>("pending")
    const spinnerText = Effect.gen(function* () {
      const state = yield* Ref.get(seen)
      const left = expiresAt - (yield* Clock.currentTimeMillis)
      return state === "completing"
        ? "Completing..."
        : `Waiting ${options.waiting} (${clockText(left)} left, Ctrl+C to stop)`
    })
    return yield* withSpinner(spinnerText, waitForOutcome(started, expiresAt, seen)).pipe(
      Effect.onInterrupt(() =>
        Console.error(
          `Stopped waiting. The link stays valid until ${timeOfDay(expiresAt)}: if it is completed, it takes effect all the same.`
        )
      ),
      Effect.catchAll(report)
    )
  })

/**
 * `--no-open`.
 *
 * @since 0.1.0
 * @category options
 */
export const noOpenOption = Options.boolean("no-open").pipe(
  Options.withDescription("Do not open the browser; only print the URL")
)

/**
 * Says how the wait ended: with `--format json` the outcome and `fields` on
 * stdout; in plain words `completed` on stdout, a failure or an expiry on
 * stderr, and for those exit code 2; a request that awaits the application's
 * confirmation on stderr, exit code 3.
 *
 * @since 0.1.0
 * @category utils
 */
export const reportOutcome = (
  outcome: Final,
  options: {
    readonly format: "plain" | "json"
    readonly fields: Readonly<Record<string, string | undefined>>
    readonly completed: string
    /** What did not complete: "authorization", "installation". */
    readonly what: string
  }
): Effect.Effect<void, CliExit> =>
  Effect.gen(function* () {
    if (options.format === "json") {
      const fields = Object.fromEntries(Object.entries(options.fields).filter(([, value]) => value !== undefined))
      yield* Console.log(
        JSON.stringify(
          {
            request: outcome.request,
            status: outcome.status,
            ...(outcome.error === undefined ? {} : { error: outcome.error }),
            ...fields
          },
          null,
          2
        )
      )
    }
    switch (outcome.status) {
      case "completed":
        if (options.format === "plain") yield* Console.log(options.completed)
        return
      case "failed":
        yield* Console.error(`The ${options.what} did not complete: ${describeFailure(outcome.error)}.`)
        return yield* new CliExit({ code: ExitCode.Failure })
      case "expired":
        yield* Console.error(
          `The ${options.what} link expired before it was used: run the command again for a new link.`
        )
        return yield* new CliExit({ code: ExitCode.Failure })
      case "awaiting_confirmation":
        yield* Console.error(
          `The ${options.what} is done at the provider and awaits the application's confirmation: this project confirms its users, so no token is issued until the application confirms the user with the code its return URL received.`
        )
        return yield* new CliExit({ code: ExitCode.AwaitingConfirmation })
    }
  })
