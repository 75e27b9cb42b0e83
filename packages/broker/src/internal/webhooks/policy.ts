/**
 * The webhooks' policy, next to its constants: which events a webhook takes,
 * what its secret and URL may be, when a failed delivery is tried again, and
 * how much of a receiver's answer is read.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import { Duration, Schema } from "effect"
import { endpointProblem } from "../endpoints.js"
import { EventKind } from "../events/models.js"

/** The prefix of a webhook's id. */
export const WEBHOOK_ID_PREFIX = "wh"

/** The prefix of a delivery's id. */
export const DELIVERY_ID_PREFIX = "whd"

/**
 * The delay before the next attempt after the n-th failed one (n from 1): the
 * last delay repeats until `MAX_ATTEMPTS`. About 24 hours in all, as the
 * Standard Webhooks specification suggests.
 */
export const RETRY_DELAYS: ReadonlyArray<Duration.Duration> = [
  Duration.seconds(5),
  Duration.seconds(30),
  Duration.minutes(2),
  Duration.minutes(10),
  Duration.minutes(30),
  Duration.hours(1)
]

/** How many attempts a delivery gets before it is `failed`: the delays above, then hourly, add up to about 24 hours. */
export const MAX_ATTEMPTS = 29

/** Each delay is lengthened by up to this fraction, at random, so that receivers back from an outage are not hit at once. */
export const JITTER = 0.2

/**
 * When to try again after the `attempt`-th failed attempt (1 for the first),
 * or none when it was the last. `random` is in [0, 1); `scale` shortens the
 * schedule (tests and staging, through `CONNECT_WEBHOOK_BACKOFF_SCALE`).
 */
export const retryDelayMillis = (attempt: number, random: number, scale = 1): number | undefined => {
  if (attempt >= MAX_ATTEMPTS) return undefined
  const base = RETRY_DELAYS[Math.min(attempt, RETRY_DELAYS.length) - 1] ?? Duration.hours(1)
  return Math.round(Duration.toMillis(base) * scale * (1 + JITTER * random))
}

/** The receiver answered 410 Gone: it wants no more deliveries, so the webhook is disabled (as Standard Webhooks suggests). */
export const DISABLE_ON_GONE = true

/** How many bytes of a receiver's answer are read (for the delivery's last error); the rest is dropped. */
export const MAX_ANSWER_BYTES = 1024

/** How many characters of an answer or error a delivery keeps. */
export const MAX_ERROR_LENGTH = 256

/** How many attempts a delivery's log keeps, the latest ones. */
export const MAX_LOGGED_ATTEMPTS = 30

/** How many webhooks a project may have. */
export const MAX_WEBHOOKS_PER_PROJECT = 20

/** The prefix of a webhook secret, as Standard Webhooks writes them. */
export const SECRET_PREFIX = "whsec_"

/** How many random bytes a generated secret has (the specification asks for 24 to 64). */
export const SECRET_BYTES = 32

const MIN_SECRET_BYTES = 24
const MAX_SECRET_BYTES = 64

/** What is wrong with `value` as a webhook secret, if anything (never the value itself). */
export const secretProblem = (value: string): string | undefined => {
  const expected = `Expected ${SECRET_PREFIX} followed by the base64 of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`
  if (!value.startsWith(SECRET_PREFIX)) return expected
  const encoded = value.slice(SECRET_PREFIX.length)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return expected
  const bytes = Buffer.from(encoded, "base64").length
  return bytes < MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES ? expected : undefined
}

/** A new random secret, `whsec_<base64>`. */
export const generateSecret = (): string => `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString("base64")}`

/**
 * A webhook secret as written in a request or the configuration file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebhookSecret = Schema.String.pipe(Schema.filter((value) => secretProblem(value) ?? true)).annotations({
  identifier: "WebhookSecret",
  message: () => ({ message: secretProblem("") ?? "", override: true })
})

/** The groups of event kinds (`token`, `authorization`, …), each of which a filter may name as `<group>.*`. */
const GROUPS = [...new Set(EventKind.literals.map((kind) => kind.slice(0, kind.indexOf("."))))]

/**
 * An item of a webhook's filter: an event kind (`token.issued`), or a group of
 * kinds (`token.*`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventPattern = Schema.Literal(
  ...EventKind.literals,
  ...GROUPS.map((group) => `${group}.*` as const)
).annotations({
  // One line instead of one per kind and group.
  message: (issue) => ({
    message: `Expected an event kind (token.issued) or a group of kinds (token.*), not ${JSON.stringify(issue.actual)}`,
    override: true
  })
})

/**
 * What is wrong with a webhook's URL under the policy of connectors' endpoints
 * (https, or http to loopback and allowed hosts; never link-local or
 * metadata), in a webhook's words; `undefined` when it is fine.
 */
export const webhookUrlProblem = (url: string, allowedHttpHosts: ReadonlySet<string>): string | undefined =>
  endpointProblem(url, allowedHttpHosts)?.replace("a provider's URL", "a public URL")

/** Whether a webhook with the filter `patterns` (every kind when empty) takes events of `kind`. */
export const takes = (patterns: ReadonlyArray<string>, kind: string): boolean =>
  patterns.length === 0 ||
  patterns.some((pattern) => pattern === kind || (pattern.endsWith(".*") && kind.startsWith(pattern.slice(0, -1))))

/**
 * Events without a project (connector created, installation added, …) are
 * not delivered: a webhook belongs to a project, and such an event is about
 * the broker's setup, which one project's application cannot act on (and
 * which may concern other projects).
 */
export const deliverable = (event: {
  readonly projectId?: string | undefined
}): event is { readonly projectId: string } => event.projectId !== undefined
