/**
 * The query of `GET /v1/admin/events`, read strictly: every parameter known
 * by name, given at most once (`kind` may repeat), its value checked; what is
 * wrong is said by parameter.
 *
 * @since 0.1.0
 */
import { Either, Schema } from "effect"
import type { FieldIssue } from "effect-connect/ConnectError"
import { type EventFilter, EventKind } from "./events/models.js"
import { isPathName, PATH_NAME_RULE } from "./limits.js"
import { subjectKey } from "./tokenKeys.js"

/**
 * How many events a page holds by default, and at most.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_EVENT_PAGE = 50

/**
 * @since 0.1.0
 * @category constants
 */
export const MAX_EVENT_PAGE = 500

const KNOWN = new Set(["connector", "project", "user", "kind", "since", "until", "before", "after", "limit"])
const isKind = Schema.is(EventKind)
const KINDS = EventKind.literals.join(", ")

/**
 * The subject a `user` parameter names: `app`, `installation` and the keys
 * the broker stores (`user:…`, `jwt-bearer:…`, `token:…`) as they are; any
 * other value is a user id (without issuer).
 *
 * @since 0.1.0
 * @category utils
 */
export const subjectOfUser = (user: string): string =>
  user === "app" || user === "installation" || /^(user|jwt-bearer|token):/.test(user)
    ? user
    : subjectKey({ type: "user", id: user })

/** A time: epoch milliseconds, or an ISO 8601 date or date-time. */
const parseTime = (value: string): number | undefined => {
  if (/^\d{1,15}$/.test(value)) return Number(value)
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

/** A cursor: the `seq` of an event, as the answers' `next` gives it. */
const parseCursor = (value: string): number | undefined => (/^\d{1,15}$/.test(value) ? Number(value) : undefined)

/** The values of `kind`: repeated, comma-separated, or both. */
const parseKinds = (values: ReadonlyArray<string>, issues: Array<FieldIssue>): Array<EventKind> => {
  const kinds = values.flatMap((value) => value.split(",")).map((kind) => kind.trim())
  const unknown = kinds.filter((kind) => !isKind(kind))
  if (unknown.length > 0) issues.push({ path: "kind", message: `Unknown kind ${unknown.join(", ")}; one of ${KINDS}` })
  return kinds.filter(isKind)
}

/** The one value of a parameter given at most once. */
const single = (params: URLSearchParams, name: string, issues: Array<FieldIssue>): string | undefined => {
  const values = params.getAll(name)
  if (values.length > 1) issues.push({ path: name, message: "Expected at most one value" })
  return values[0]
}

/** A value checked by `parse`, or an issue naming the parameter. */
const checked = <A>(
  params: URLSearchParams,
  name: string,
  issues: Array<FieldIssue>,
  parse: (value: string) => A | undefined,
  rule: string
): A | undefined => {
  const value = single(params, name, issues)
  if (value === undefined) return undefined
  const parsed = parse(value)
  if (parsed === undefined) issues.push({ path: name, message: rule })
  return parsed
}

const pathValue = (value: string) => (isPathName(value) ? value : undefined)
const limitValue = (value: string) => {
  const n = /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN
  return n >= 1 && n <= MAX_EVENT_PAGE ? n : undefined
}

/**
 * The filter of a query, or the issues of its parameters (each named by
 * its parameter): unknown parameters are refused.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseEventQuery = (params: URLSearchParams): Either.Either<EventFilter, ReadonlyArray<FieldIssue>> => {
  const issues: Array<FieldIssue> = []
  for (const name of new Set(params.keys())) {
    if (!KNOWN.has(name))
      issues.push({ path: name, message: `Unknown parameter; expected one of ${[...KNOWN].join(", ")}` })
  }
  const time = "Expected an ISO 8601 time (2025-01-31T12:00:00Z) or milliseconds since the epoch"
  const cursor = "Expected a cursor: the next value of an earlier answer"
  const connector = checked(params, "connector", issues, pathValue, PATH_NAME_RULE)
  const projectId = checked(params, "project", issues, pathValue, PATH_NAME_RULE)
  const user = checked(params, "user", issues, pathValue, PATH_NAME_RULE)
  const kinds = parseKinds(params.getAll("kind"), issues)
  const since = checked(params, "since", issues, parseTime, time)
  const until = checked(params, "until", issues, parseTime, time)
  const beforeSeq = checked(params, "before", issues, parseCursor, cursor)
  const afterSeq = checked(params, "after", issues, parseCursor, cursor)
  const limit = checked(params, "limit", issues, limitValue, `Expected a whole number from 1 to ${MAX_EVENT_PAGE}`)
  if (params.has("before") && params.has("after")) {
    issues.push({ path: "after", message: "Expected before or after, not both" })
  }
  if (issues.length > 0) return Either.left(issues)
  return Either.right({
    connector,
    projectId,
    subject: user === undefined ? undefined : subjectOfUser(user),
    kinds: kinds.length === 0 ? undefined : kinds,
    since,
    until,
    beforeSeq,
    afterSeq,
    limit: limit ?? DEFAULT_EVENT_PAGE
  })
}
