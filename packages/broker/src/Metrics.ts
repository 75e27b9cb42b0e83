/**
 * The broker's metrics, as Effect `Metric`s: the single source for both the
 * OTLP export (through `@effect/opentelemetry`, see `Telemetry`) and
 * `GET /metrics` in the Prometheus text format, rendered here from Effect's
 * metric snapshot. Labels are low-cardinality only: a connector's uid, an
 * outcome, a kind; never a user, a project key or a token.
 *
 * @since 0.1.0
 */
import {
  Effect,
  FiberRef,
  HashMap,
  Metric,
  MetricBoundaries,
  MetricLabel,
  type MetricPair,
  MetricState,
  Option
} from "effect"
import type { StoreService } from "./Store.js"

/**
 * Token requests answered, by connector and outcome (`issued`, or the error code of the answer).
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenRequests = Metric.counter("connect_token_requests_total", {
  description: "Token requests answered, by connector and outcome (issued, or the error code)",
  incremental: true
})

/**
 * Stored tokens handed out again instead of asking the provider.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenReuses = Metric.counter("connect_token_reuses_total", {
  description: "Stored tokens handed out again instead of asking the provider, by connector",
  incremental: true
})

/**
 * Provider calls (every attempt), by connector, kind (grant type or operation) and outcome.
 *
 * @since 0.1.0
 * @category metrics
 */
export const providerRequests = Metric.counter("connect_provider_requests_total", {
  description: "Provider calls (each attempt), by connector, kind and outcome (ok, or the error kind)",
  incremental: true
})

/**
 * The time of a provider call (one attempt), by connector and kind.
 *
 * @since 0.1.0
 * @category metrics
 */
export const providerDuration = Metric.histogram(
  "connect_provider_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 12 }),
  "The time of one provider call, by connector and kind"
)

/**
 * Refreshes of stored grants, by connector and outcome (`ok`, or the provider error's kind).
 *
 * @since 0.1.0
 * @category metrics
 */
export const grantRefreshes = Metric.counter("connect_grant_refreshes_total", {
  description: "Refreshes of stored grants, by connector and outcome (ok, or the failure's kind)",
  incremental: true
})

/**
 * Grants by status, read from the store when the metrics are read.
 *
 * @since 0.1.0
 * @category metrics
 */
export const grants = Metric.gauge("connect_grants", { description: "Stored grants, by status" })

/**
 * Authorizations started, by connector and flow (`authorization_code`, `installation`, `device`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const authorizationsStarted = Metric.counter("connect_authorizations_started_total", {
  description: "User authorizations and installations started, by connector and flow",
  incremental: true
})

/**
 * Authorizations finished, by outcome (`completed`, `failed`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const authorizationsCompleted = Metric.counter("connect_authorizations_completed_total", {
  description: "User authorizations and installations finished, by outcome",
  incremental: true
})

/**
 * Requests refused by the rate limiter, by route.
 *
 * @since 0.1.0
 * @category metrics
 */
export const rateLimited = Metric.counter("connect_rate_limited_total", {
  description: "Requests refused by the rate limiter, by route",
  incremental: true
})

/**
 * The time a token had left when it was handed out, by connector.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenTimeLeft = Metric.histogram(
  "connect_token_time_left_seconds",
  MetricBoundaries.fromIterable([10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]),
  "The time a token had left when it was handed out, by connector"
)

/**
 * The connector the current request is about, once the route has found it
 * (empty before): provider calls label their metrics with it.
 *
 * @since 0.1.0
 * @category context
 */
export const currentConnector: FiberRef.FiberRef<string> = FiberRef.unsafeMake("")

/**
 * Names the connector of the current request: for the metrics of what
 * follows, on its log lines (`connector`) and on the request's span.
 *
 * @since 0.1.0
 * @category context
 */
export const setConnector = (uid: string): Effect.Effect<void> =>
  Effect.all(
    [
      FiberRef.set(currentConnector, uid),
      FiberRef.update(FiberRef.currentLogAnnotations, HashMap.set("connector", uid as unknown)),
      Effect.annotateCurrentSpan("connect.connector", uid)
    ],
    { discard: true }
  )

/**
 * Adds one to a counter under the given labels.
 *
 * @since 0.1.0
 * @category utils
 */
export const count = (
  counter: Metric.Metric.Counter<number>,
  labels: Readonly<Record<string, string>>
): Effect.Effect<void> => Metric.increment(Metric.taggedWithLabels(counter, labelsOf(labels)))

/**
 * Adds `n` to a counter under the given labels.
 *
 * @since 0.3.0
 * @category utils
 */
export const countBy = (
  counter: Metric.Metric.Counter<number>,
  labels: Readonly<Record<string, string>>,
  n: number
): Effect.Effect<void> => Metric.incrementBy(Metric.taggedWithLabels(counter, labelsOf(labels)), n)

/**
 * Records a value in a histogram under the given labels.
 *
 * @since 0.1.0
 * @category utils
 */
export const observe = (
  histogram: Metric.Metric.Histogram<number>,
  labels: Readonly<Record<string, string>>,
  value: number
): Effect.Effect<void> => Metric.update(Metric.taggedWithLabels(histogram, labelsOf(labels)), value)

const labelsOf = (labels: Readonly<Record<string, string>>) =>
  Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value === "" ? "unknown" : value))

/** The statuses a grant can have: each has a value in the gauge, 0 when there is none. */
const GRANT_STATUSES = ["active", "revoked", "invalid", "lost"] as const

/**
 * Reads the grants by status from the store into {@link grants}: one grouped
 * count. A store that cannot answer leaves the gauge as it was.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshGrantGauge = (store: Pick<StoreService, "countGrantsByStatus">): Effect.Effect<void> =>
  store.countGrantsByStatus.pipe(
    Effect.flatMap((rows) =>
      Effect.forEach(
        [...new Set([...GRANT_STATUSES, ...rows.map((row) => row.status)])],
        (status) =>
          Metric.set(Metric.tagged(grants, "status", status), rows.find((row) => row.status === status)?.count ?? 0),
        { discard: true }
      )
    ),
    Effect.catchAll((error) => Effect.logWarning("the grants gauge could not be read", error.message)),
    Effect.withTracerEnabled(false)
  )

// ---------------------------------------------------------------------------------------------------------------
// The Prometheus text format
// ---------------------------------------------------------------------------------------------------------------

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const numberText = (value: number | bigint) =>
  typeof value === "bigint"
    ? value.toString()
    : Number.isNaN(value)
      ? "NaN"
      : value === Number.POSITIVE_INFINITY
        ? "+Inf"
        : value === Number.NEGATIVE_INFINITY
          ? "-Inf"
          : String(value)

const labelText = (labels: ReadonlyArray<readonly [string, string]>) =>
  labels.length === 0 ? "" : `{${labels.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`

/** A metric name Prometheus accepts: letters, digits, `_` and `:`. */
const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")

const typeOf = (state: unknown) =>
  MetricState.isCounterState(state)
    ? "counter"
    : MetricState.isGaugeState(state)
      ? "gauge"
      : MetricState.isHistogramState(state)
        ? "histogram"
        : MetricState.isSummaryState(state)
          ? "summary"
          : "untyped"

/** The sample lines of one metric's state under its labels. */
const samples = (name: string, labels: ReadonlyArray<readonly [string, string]>, state: unknown): Array<string> => {
  if (MetricState.isCounterState(state)) return [`${name}${labelText(labels)} ${numberText(state.count)}`]
  if (MetricState.isGaugeState(state)) return [`${name}${labelText(labels)} ${numberText(state.value)}`]
  if (MetricState.isHistogramState(state)) {
    // Effect's buckets are cumulative already, as Prometheus wants them.
    const lines = state.buckets
      .filter(([bound]) => bound !== Number.POSITIVE_INFINITY)
      .map(([bound, n]) => `${name}_bucket${labelText([...labels, ["le", numberText(bound)]])} ${n}`)
    lines.push(`${name}_bucket${labelText([...labels, ["le", "+Inf"]])} ${state.count}`)
    lines.push(
      `${name}_sum${labelText(labels)} ${numberText(state.sum)}`,
      `${name}_count${labelText(labels)} ${state.count}`
    )
    return lines
  }
  if (MetricState.isSummaryState(state)) {
    const lines = state.quantiles.flatMap(([q, value]) =>
      Option.isSome(value)
        ? [`${name}${labelText([...labels, ["quantile", String(q)]])} ${numberText(value.value)}`]
        : []
    )
    lines.push(
      `${name}_sum${labelText(labels)} ${numberText(state.sum)}`,
      `${name}_count${labelText(labels)} ${state.count}`
    )
    return lines
  }
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([key, n]) => `${name}${labelText([...labels, ["key", key]])} ${n}`)
  }
  return []
}

/**
 * Renders metric pairs in the Prometheus text exposition format (0.0.4): one
 * `# HELP` and `# TYPE` per name, then its samples.
 *
 * @since 0.1.0
 * @category prometheus
 */
export const renderPrometheus = (pairs: Iterable<MetricPair.MetricPair.Untyped>): string => {
  const byName = new Map<string, { help: string; type: string; lines: Array<string> }>()
  for (const pair of pairs) {
    const name = metricName(pair.metricKey.name)
    const labels = pair.metricKey.tags.map((tag) => [tag.key, tag.value] as const)
    const entry = byName.get(name) ?? {
      help: Option.getOrElse(pair.metricKey.description, () => name),
      type: typeOf(pair.metricState),
      lines: []
    }
    entry.lines.push(...samples(name, labels, pair.metricState))
    byName.set(name, entry)
  }
  const out: Array<string> = []
  for (const [name, entry] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`# HELP ${name} ${escapeHelp(entry.help)}`, `# TYPE ${name} ${entry.type}`, ...entry.lines)
  }
  return `${out.join("\n")}\n`
}

/**
 * The broker's metrics (and any other Effect metric of the process) in the
 * Prometheus text format, the grants gauge read first.
 *
 * @since 0.1.0
 * @category prometheus
 */
export const prometheusText = (store: Pick<StoreService, "countGrantsByStatus">): Effect.Effect<string> =>
  Effect.zipRight(refreshGrantGauge(store), Effect.map(Metric.snapshot, renderPrometheus))

/**
 * The content type of the Prometheus text format.
 *
 * @since 0.1.0
 * @category prometheus
 */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
