/**
 * `connect authorize <connector> --user-id <id>`: starts a user's
 * authorization, shows the link to open (and opens it in the browser on a
 * terminal), then waits until the user has connected their account, refused,
 * or let the request expire.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { Clock, Config, Console, Duration, Effect, Either, Option, Ref, Schedule } from "effect"
import type { AuthorizationResponse, AuthorizationState, AuthorizationStatus } from "../Authorization.js"
import { ConnectClient } from "../ConnectClient.js"
import type { ConnectError } from "../ConnectError.js"
import * as Connection from "./Connection.js"
import { CliExit, ExitCode, exitOnInterrupt, report } from "./Exit.js"
import { splitScopes } from "./Token.js"

/** How often the status is read. */
const POLL_INTERVAL_MS = 1_500

/** How long after `expiresAt` a request that is still open is waited for (a code exchange under way, clock skew). */
const GRACE_MS = 30_000

/** The broker's default lifetime of a request, for a server that answers no `expiresAt`. */
const DEFAULT_EXPIRES_IN_MS = 10 * 60_000

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

/** A status the wait ends on. */
type Final = AuthorizationStatus & { readonly status: Exclude<AuthorizationState, "pending" | "completing"> }

const isFinal = (status: AuthorizationStatus): status is Final =>
  status.status === "completed" || status.status === "failed" || status.status === "expired"

/**
 * Reads the status every 1.5 seconds until it is final, or until the request
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
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "authorize",
  {
    connector: Args.text({ name: "connector" }).pipe(Args.withDescription("The connector, e.g. acme/api")),
    userId: Options.text("user-id").pipe(Options.withDescription("The user who connects their account (required)")),
    installationId: Options.text("installation-id").pipe(
      Options.withDescription("The installation (tenant) to authorize for"),
      Options.optional
    ),
    scopes: Options.text("scopes").pipe(
      Options.withDescription('The scopes, separated by commas or spaces: "api:read,api:write"'),
      Options.optional
    ),
    resources: Options.text("resource").pipe(
      Options.withDescription("A resource indicator (RFC 8707); repeat for several"),
      Options.repeated
    ),
    prompt: Options.text("prompt").pipe(
      Options.withDescription("The provider's prompt, e.g. consent to ask the user again"),
      Options.optional
    ),
    expiresIn: Options.text("expires-in").pipe(
      Options.withDescription("How long the link stays valid: minutes (10), or 90s, 1500ms; at most 60 minutes"),
      Options.mapEffect((text) =>
        Either.match(parseExpiresIn(text), {
          onLeft: (message) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message))),
          onRight: Effect.succeed
        })
      ),
      Options.optional
    ),
    device: Options.boolean("device").pipe(
      Options.withDescription("Use the device flow: the user enters a code shown here (if the server offers it)")
    ),
    noOpen: Options.boolean("no-open").pipe(Options.withDescription("Do not open the browser; only print the URL")),
    format: Options.choice("format", ["plain", "json"]).pipe(
      Options.withDescription("plain: one line when connected; json: {request, status, connector, userId}"),
      Options.withDefault("plain")
    ),
    ...Connection.options
  },
  (input) =>
    Effect.gen(function* () {
      const client = yield* ConnectClient
      const scopes = Option.map(input.scopes, splitScopes)
      const started = yield* client
        .startAuthorization(
          input.connector,
          {
            subject: { type: "user", id: input.userId },
            ...(Option.isSome(input.installationId) ? { installationId: input.installationId.value } : {}),
            ...(Option.isSome(scopes) && scopes.value.length > 0 ? { scopes: scopes.value } : {}),
            ...(input.resources.length > 0 ? { resources: input.resources } : {})
          },
          {
            ...(input.device ? { deviceCode: true } : {}),
            ...(Option.isSome(input.expiresIn) ? { expiresInMs: input.expiresIn.value } : {}),
            ...(Option.isSome(input.prompt) ? { prompt: input.prompt.value } : {})
          }
        )
        .pipe(Effect.catchAll(report))
      const connector = started.connector?.uid ?? input.connector
      const now = yield* Clock.currentTimeMillis
      const expiresAt = started.expiresAt ?? now + Option.getOrElse(input.expiresIn, () => DEFAULT_EXPIRES_IN_MS)

      yield* Console.error(`To connect user "${input.userId}" to connector "${connector}", open this URL in a browser:`)
      yield* Console.error(started.url)
      if (started.deviceCode !== undefined) {
        yield* Console.error(
          `\n    Your code: ${started.deviceCode}\n\nEnter this code on that page if it asks for one, and check that it matches.`
        )
      }
      if (!input.noOpen && (yield* interactive)) {
        yield* openInBrowser(started.url)
        yield* Console.error("Opening it in your browser...")
      }
      if (process.stderr.isTTY !== true) {
        yield* Console.error(`Waiting for the user to authorize (the link expires at ${timeOfDay(expiresAt)})...`)
      }

      const seen = yield* Ref.make<AuthorizationState>("pending")
      const spinnerText = Effect.gen(function* () {
        const state = yield* Ref.get(seen)
        const left = expiresAt - (yield* Clock.currentTimeMillis)
        return state === "completing"
          ? "Completing the connection..."
          : `Waiting for the user to authorize in the browser (${clockText(left)} left, Ctrl+C to stop)`
      })
      const outcome = yield* withSpinner(spinnerText, waitForOutcome(started, expiresAt, seen)).pipe(
        Effect.onInterrupt(() =>
          Console.error(
            `Stopped waiting. The link stays valid until ${timeOfDay(expiresAt)}: if the user completes it, the account is connected.`
          )
        ),
        Effect.catchAll(report)
      )

      if (input.format === "json") {
        yield* Console.log(
          JSON.stringify(
            {
              request: outcome.request,
              status: outcome.status,
              ...(outcome.error === undefined ? {} : { error: outcome.error }),
              connector,
              userId: input.userId
            },
            null,
            2
          )
        )
      }
      switch (outcome.status) {
        case "completed":
          if (input.format === "plain") {
            yield* Console.log(`Connected: user "${input.userId}" authorized connector "${connector}".`)
          }
          return
        case "failed":
          yield* Console.error(`The authorization did not complete: ${describeFailure(outcome.error)}.`)
          return yield* new CliExit({ code: ExitCode.Failure })
        case "expired":
          yield* Console.error(
            "The authorization link expired before the user completed it: run the command again for a new link."
          )
          return yield* new CliExit({ code: ExitCode.Failure })
      }
    }).pipe(
      Effect.provide(Connection.clientLayer(input)),
      // Nothing was connected: say so in the exit code.
      exitOnInterrupt(ExitCode.Interrupted)
    )
).pipe(
  Command.withDescription(
    [
      "Connects a user's account: prints the URL to open (and opens it in the browser on a terminal),",
      "then waits until the user has authorized the connector, refused, or let the link expire.",
      "Exit codes: 0 connected; 2 refused, failed or expired (one line says why), or any other failure;",
      "1 the connector must be installed first; 130 stopped with Ctrl+C.",
      "",
      "Example: connect authorize acme/api --user-id ada --scopes api:read",
      "Example: connect authorize acme/api --user-id ada --no-open --expires-in 5 --format json"
    ].join("\n")
  )
)
