import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option } from "effect"
import { settingsConfig } from "../src/Telemetry.js"

const settingsOf = (env: Record<string, string>) =>
  Effect.runSync(Effect.withConfigProvider(settingsConfig, ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("Telemetry.settingsConfig", () => {
  it("exports nothing when no OTEL variable is set", () => {
    const settings = settingsOf({})
    expect(Option.isNone(settings.tracesUrl)).toBe(true)
    expect(Option.isNone(settings.metricsUrl)).toBe(true)
    expect(settings.serviceName).toBe("connect-broker")
  })

  it("derives each signal's URL from the base endpoint, and lets a signal's own endpoint win", () => {
    const settings = settingsOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://metrics:9000/ingest",
      OTEL_SERVICE_NAME: "broker-eu",
      OTEL_METRIC_EXPORT_INTERVAL: "5000"
    })
    expect(settings.tracesUrl).toEqual(Option.some("http://collector:4318/v1/traces"))
    expect(settings.metricsUrl).toEqual(Option.some("http://metrics:9000/ingest"))
    expect(settings.serviceName).toBe("broker-eu")
    expect(Duration.toMillis(settings.metricExportInterval)).toBe(5000)
  })

  it("turns a signal off with its exporter set to none, and everything off with OTEL_SDK_DISABLED", () => {
    const some = settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_TRACES_EXPORTER: "none" })
    expect(Option.isNone(some.tracesUrl)).toBe(true)
    expect(Option.isSome(some.metricsUrl)).toBe(true)
    const none = settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })
    expect(Option.isNone(none.tracesUrl)).toBe(true)
    expect(Option.isNone(none.metricsUrl)).toBe(true)
  })

  it("takes OTLP over HTTP and refuses gRPC at start, naming the variable", () => {
    expect(
      Option.isSome(
        settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" })
          .tracesUrl
      )
    ).toBe(true)
    const refused = Effect.runSync(
      Effect.flip(
        Effect.withConfigProvider(
          settingsConfig,
          ConfigProvider.fromMap(new Map([["OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"]]))
        )
      )
    )
    expect(String(refused)).toContain("OTEL_EXPORTER_OTLP_PROTOCOL")
    expect(String(refused)).toContain("4318")
  })
})
