/**
 * The broker's OpenTelemetry export: traces and metrics over OTLP/HTTP (JSON),
 * configured by the standard variables. Nothing is exported unless an
 * endpoint (or an exporter) is configured.
 *
 * | variable | meaning |
 * | --- | --- |
 * | `OTEL_SDK_DISABLED=true` | export nothing, whatever else is set |
 * | `OTEL_EXPORTER_OTLP_ENDPOINT` | the collector's base URL: traces go to `/v1/traces`, metrics to `/v1/metrics` |
 * | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | a signal's full URL |
 * | `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER` | `otlp` or `none` (a signal with an endpoint is `otlp` unless `none`) |
 * | `OTEL_SERVICE_NAME` | the `service.name` (default `connect-broker`) |
 * | `OTEL_RESOURCE_ATTRIBUTES` | more resource attributes, `key=value,key=value` |
 * | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds between metric exports (default 60000) |
 * | `OTEL_EXPORTER_OTLP_HEADERS` | headers of every export, read by the exporters |
 * | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/json` or `http/protobuf` (bodies are sent as JSON, which OTLP/HTTP receivers take); `grpc` is refused at start |
 *
 * Spans are batched; the layer's release flushes them (and the last metrics),
 * so a broker stopped by SIGTERM loses none.
 *
 * @since 0.1.0
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, ConfigError, Duration, Effect, Either, Layer, Option, Schedule } from "effect"
import { refreshGrantGauge } from "./Metrics.js"
import { Store } from "./Store.js"

/**
 * What the environment asks of the export.
 *
 * @since 0.1.0
 * @category models
 */
export interface TelemetrySettings {
  readonly serviceName: string
  /** The URL traces are sent to, when traces are exported. */
  readonly tracesUrl: Option.Option<string>
  /** The URL metrics are sent to, when metrics are exported. */
  readonly metricsUrl: Option.Option<string>
  readonly metricExportInterval: Duration.Duration
}

const optionalText = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.flatMap((value) => (value.trim() === "" ? Option.none() : Option.some(value.trim()))))
  )

/** A signal's URL: its own endpoint, or the base endpoint and its path, unless its exporter is `none`. */
const signalUrl = (
  exporter: Option.Option<string>,
  own: Option.Option<string>,
  base: Option.Option<string>,
  path: string
) =>
  Option.isSome(exporter) && exporter.value.toLowerCase() === "none"
    ? Option.none()
    : Option.orElse(own, () => Option.map(base, (url) => `${url.replace(/\/+$/, "")}${path}`))

/** The OTLP protocols the broker's exporters speak: OTLP/HTTP (bodies in JSON). gRPC is not one. */
const OTLP_PROTOCOLS: ReadonlyArray<string> = ["http/json", "http/protobuf"]

/**
 * The settings from the OTEL variables.
 *
 * @since 0.1.0
 * @category config
 */
export const settingsConfig: Config.Config<TelemetrySettings> = Config.all({
  disabled: Config.boolean("OTEL_SDK_DISABLED").pipe(Config.withDefault(false)),
  base: optionalText("OTEL_EXPORTER_OTLP_ENDPOINT"),
  traces: optionalText("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
  metrics: optionalText("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
  tracesExporter: optionalText("OTEL_TRACES_EXPORTER"),
  metricsExporter: optionalText("OTEL_METRICS_EXPORTER"),
  serviceName: optionalText("OTEL_SERVICE_NAME"),
  protocol: optionalText("OTEL_EXPORTER_OTLP_PROTOCOL").pipe(
    Config.mapOrFail((protocol) =>
      Option.isNone(protocol) || OTLP_PROTOCOLS.includes(protocol.value.toLowerCase())
        ? Either.right(protocol)
        : Either.left(
            ConfigError.InvalidData(
              ["OTEL_EXPORTER_OTLP_PROTOCOL"],
              `the broker exports OTLP over HTTP (JSON bodies, which OTLP/HTTP receivers take as they take protobuf): use ${OTLP_PROTOCOLS.join(" or ")}, or leave it unset, with the collector's HTTP port (4318), got ${JSON.stringify(protocol.value)}`
            )
          )
    )
  ),
  interval: Config.integer("OTEL_METRIC_EXPORT_INTERVAL").pipe(
    Config.validate({ message: "Expected a number of milliseconds of at least 1", validation: (n) => n >= 1 }),
    Config.withDefault(60_000)
  )
}).pipe(
  Config.map((read) => ({
    serviceName: Option.getOrElse(read.serviceName, () => "connect-broker"),
    tracesUrl: read.disabled ? Option.none() : signalUrl(read.tracesExporter, read.traces, read.base, "/v1/traces"),
    metricsUrl: read.disabled ? Option.none() : signalUrl(read.metricsExporter, read.metrics, read.base, "/v1/metrics"),
    metricExportInterval: Duration.millis(read.interval)
  }))
)

/**
 * The export as `settings` say: an OpenTelemetry tracer (batched OTLP/HTTP
 * spans) and metric reader (periodic OTLP/HTTP export of Effect's metrics),
 * each only when its URL is set; with neither, nothing at all (Effect's own
 * tracer stays, and no span leaves the process). While metrics are exported,
 * the grants gauge is read from the store before each export.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (settings: TelemetrySettings): Layer.Layer<never, never, Store> => {
  if (Option.isNone(settings.tracesUrl) && Option.isNone(settings.metricsUrl)) return Layer.empty
  const interval = Duration.toMillis(settings.metricExportInterval)
  const sdk = NodeSdk.layer(() => ({
    resource: { serviceName: settings.serviceName },
    ...Option.match(settings.tracesUrl, {
      onNone: () => ({}),
      onSome: (url) => ({ spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url })) })
    }),
    ...Option.match(settings.metricsUrl, {
      onNone: () => ({}),
      onSome: (url) => ({
        metricReader: new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url }),
          exportIntervalMillis: interval,
          exportTimeoutMillis: Math.min(interval, 30_000)
        })
      })
    }),
    shutdownTimeout: "5 seconds"
  }))
  const gauge = Option.isNone(settings.metricsUrl)
    ? Layer.empty
    : Layer.scopedDiscard(
        Effect.forkScoped(
          Effect.repeat(
            Effect.flatMap(Store, refreshGrantGauge),
            Schedule.spaced(Duration.millis(Math.max(interval / 2, 100)))
          )
        )
      )
  return Layer.merge(Layer.discard(sdk), gauge)
}

/**
 * The export configured by the OTEL variables.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError, Store> = Layer.unwrapEffect(
  Effect.map(settingsConfig, layer)
)
