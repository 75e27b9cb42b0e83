/**
 * `connect events`: the broker's event history (tokens issued, refreshed and
 * revoked, authorizations, grants, installations, connectors), through its
 * admin API: filtered, newest page first, printed oldest first; with
 * `--follow`, new events as they come, until Ctrl+C (exit code 0).
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { EventList, EventView } from "@effect-connect/broker/AdminApi"
import { Clock, Console, Effect, Option, Schema } from "effect"
import * as AdminClient from "./AdminClient.js"
import { ExitCode, exitOnInterrupt, fail } from "./Exit.js"
import * as Flags from "./Flags.js"
import { table } from "./Table.js"

/** How often `--follow` asks for new events. */
const FOLLOW_INTERVAL = "1 second"

/** The most events one page of `--follow` takes. */
const FOLLOW_PAGE = 500

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A time as the broker takes it: a duration before now (`30m`, `1h`, `7d`)
 * as epoch milliseconds; anything else (ISO 8601, epoch milliseconds) as
 * given, for the broker to check.
 *
 * @since 0.1.0
 * @category utils
 */
export const timeParameter = (value: string, now: number): string => {
  const duration = /^(\d+)\s*([smhd])$/.exec(value.trim())
  const unit = duration?.[2] === undefined ? undefined : UNITS[duration[2]]
  return duration?.[1] === undefined || unit === undefined ? value.trim() : String(now - Number(duration[1]) * unit)
}

/**
 * A subject as people read it: a user's id (with its issuer, if any), else
 * as the broker keys it.
 *
 * @since 0.1.0
 * @category utils
 */
export const subjectLabel = (subject: string | undefined): string => {
  if (subject === undefined) return "-"
  if (!subject.startsWith("user:")) return subject
  try {
    const parsed: unknown = JSON.parse(subject.slice("user:".length))
    if (Array.isArray(parsed) && typeof parsed[1] === "string") {
      return typeof parsed[0] === "string" ? `${parsed[1]} (${parsed[0]})` : parsed[1]
    }
  } catch {
    // Not a key this command knows: shown as it is.
  }
  return subject
}

/** An event as a row: time, kind, connector, project/environment, subject, data. */
const rowOf = (event: EventView): ReadonlyArray<string> => [
  event.time,
  event.kind,
  event.connector ?? "-",
  event.project === undefined
    ? "-"
    : `${event.project}${event.environment === undefined ? "" : `/${event.environment}`}`,
  subjectLabel(event.subject),
  [
    ...(event.installationId === undefined ? [] : [`installation=${event.installationId}`]),
    ...Object.entries(event.data).map(([key, value]) => `${key}=${String(value)}`)
  ].join(" ")
]

const HEADER = ["TIME", "KIND", "CONNECTOR", "PROJECT/ENV", "SUBJECT", "DATA"]

const flags = {
  connector: Flags.optionalText("connector", "Only the events of this connector (its uid)"),
  project: Flags.optionalText("project", "Only the events of this project"),
  user: Flags.optionalText("user", "Only the events of this subject: a user id, or app"),
  kind: Options.text("kind").pipe(
    Options.withDescription("Only events of this kind (repeatable, or comma-separated), e.g. token.issued"),
    Options.repeated
  ),
  since: Flags.optionalText("since", "From this time: ISO 8601, or a duration before now (30m, 1h, 7d)"),
  until: Flags.optionalText("until", "Before this time: ISO 8601, or a duration before now"),
  limit: Flags.optionalInteger("limit", "How many events (default 50, at most 500)"),
  follow: Options.boolean("follow").pipe(
    Options.withAlias("f"),
    Options.withDescription("Keep printing new events as they come, until Ctrl+C")
  ),
  ...AdminClient.options
}

type Input = Command.Command.ParseConfig<typeof flags>

/** The route's query for the flags (without a cursor). */
const queryOf = (input: Input, now: number) => {
  const query = new URLSearchParams()
  const set = (name: string, value: Option.Option<string>) => {
    if (Option.isSome(value)) query.set(name, value.value)
  }
  set("connector", input.connector)
  set("project", input.project)
  set("user", input.user)
  for (const kind of input.kind) query.append("kind", kind)
  set(
    "since",
    Option.map(input.since, (value) => timeParameter(value, now))
  )
  set(
    "until",
    Option.map(input.until, (value) => timeParameter(value, now))
  )
  set("limit", Option.map(input.limit, String))
  return query
}

/** Prints events oldest first: a table (with its header when asked), or one JSON object a line. */
const print = (events: ReadonlyArray<EventView>, format: "plain" | "json", header: boolean) =>
  Effect.gen(function* () {
    const chronological = [...events].reverse()
    if (format === "json") {
      for (const event of chronological) {
        yield* Console.log(JSON.stringify(yield* Schema.encode(EventView)(event).pipe(Effect.orDie)))
      }
      return
    }
    if (chronological.length > 0) yield* Console.log(table([...(header ? [HEADER] : []), ...chronological.map(rowOf)]))
  })

/** Asks for what came after `cursor`, again and again, printing it; ends only when interrupted. */
const follow = (input: Input, query: URLSearchParams, cursor: string) =>
  Effect.gen(function* () {
    let after = cursor
    while (true) {
      yield* Effect.sleep(FOLLOW_INTERVAL)
      const page = new URLSearchParams(query)
      page.delete("until")
      page.set("after", after)
      page.set("limit", String(FOLLOW_PAGE))
      const answer = yield* AdminClient.request((client) => client.listEvents(page))
      // Oldest first already: printed as it comes.
      yield* print([...answer.events].reverse(), input.format, false)
      after = answer.next ?? after
    }
  }).pipe(exitOnInterrupt(ExitCode.Success))

const run = (input: Input) =>
  Effect.gen(function* () {
    if (input.follow && Option.isSome(input.until)) return yield* fail("--follow and --until do not go together")
    const query = queryOf(input, yield* Clock.currentTimeMillis)
    const answer = yield* AdminClient.request((client) => client.listEvents(query))
    if (!input.follow) {
      if (input.format === "json") {
        return yield* Console.log(JSON.stringify(yield* Schema.encode(EventList)(answer).pipe(Effect.orDie), null, 2))
      }
      if (answer.events.length === 0) return yield* Console.log("No events.")
      return yield* print(answer.events, "plain", true)
    }
    yield* print(answer.events, input.format, true)
    yield* Console.error("Following new events; Ctrl+C to stop.")
    const newest = answer.events[0]?.seq ?? 0
    return yield* follow(input, query, String(newest))
  }).pipe(Effect.provide(AdminClient.layer(input)))

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("events", flags, run).pipe(
  Command.withDescription(
    [
      "Shows the broker's event history (admin API: CONNECT_URL, CONNECT_ADMIN_TOKEN): tokens issued, refreshed",
      "and revoked; authorizations started, completed and failed; grants invalidated and revoked; installations",
      "added and removed; connectors created, updated and removed. Oldest first; --follow keeps printing new ones",
      "(with --format json, one event a line).",
      "",
      "Example: connect events --connector acme/api --kind token.issued --since 1h --follow"
    ].join("\n")
  )
)
