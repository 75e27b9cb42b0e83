import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { count, observe, renderPrometheus } from "../src/Metrics.js"

describe("Metrics.renderPrometheus", () => {
  it("renders counters, gauges and histograms that a Prometheus parser reads back", () => {
    const counter = Metric.counter("test_render_requests_total", { description: "Requests", incremental: true })
    const gauge = Metric.gauge("test_render_things", { description: "Things" })
    const histogram = Metric.histogram("test_render_seconds", MetricBoundaries.fromIterable([0.1, 1]), "Durations")
    const text = Effect.runSync(
      Effect.gen(function* () {
        yield* count(counter, { connector: 'a"b\\c', outcome: "ok" })
        yield* count(counter, { connector: 'a"b\\c', outcome: "ok" })
        yield* count(counter, { connector: "", outcome: "no" })
        yield* Metric.set(Metric.tagged(gauge, "status", "active"), 3)
        yield* observe(histogram, { kind: "k" }, 0.05)
        yield* observe(histogram, { kind: "k" }, 0.5)
        yield* observe(histogram, { kind: "k" }, 5)
        return renderPrometheus(yield* Metric.snapshot)
      })
    )
    const families = parsePrometheusTextFormat(text)
    const requests = families.find((family) => family.name === "test_render_requests_total")
    expect(requests?.type).toBe("COUNTER")
    expect(requests?.help).toBe("Requests")
    expect(requests?.metrics).toEqual(
      expect.arrayContaining([
        { labels: { connector: 'a"b\\c', outcome: "ok" }, value: "2" },
        { labels: { connector: "unknown", outcome: "no" }, value: "1" }
      ])
    )
    expect(families.find((family) => family.name === "test_render_things")?.metrics).toEqual([
      { labels: { status: "active" }, value: "3" }
    ])
    // Buckets are cumulative, +Inf is the count.
    expect(text).toContain('test_render_seconds_bucket{kind="k",le="0.1"} 1\n')
    expect(text).toContain('test_render_seconds_bucket{kind="k",le="1"} 2\n')
    expect(text).toContain('test_render_seconds_bucket{kind="k",le="+Inf"} 3\n')
    expect(text).toContain('test_render_seconds_count{kind="k"} 3\n')
    expect(text.match(/# TYPE test_render_seconds /g)).toHaveLength(1)
    expect(families.find((family) => family.name === "test_render_seconds")?.type).toBe("HISTOGRAM")
  })
})
