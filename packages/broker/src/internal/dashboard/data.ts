/**
 * What the dashboard's pages show, read from the broker's services: counts
 * per connector, the providers' health and the charts from the event
 * history, a connector's grants and tokens, the projects with their keys and
 * links. Nothing read here holds a secret: connectors come as the admin API's
 * views, grants and tokens without their values.
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import { Admin } from "../../Admin.js"
import type { ConnectorView, GrantList, TokenView } from "../../AdminApi.js"
import { type BrokerEvent, type EventKind, Events } from "../../Events.js"
import { type ConnectorLink, type Project, Store } from "../../Store.js"
import { type HourlySeries, hourly } from "./charts.js"

/** The kinds of event that are a provider's (or a user's) failure. */
export const FAILURE_KINDS: ReadonlyArray<EventKind> = ["authorization.failed", "grant.invalidated"]

/** How many hours the charts cover, and the most events they read. */
export const CHART_HOURS = 24
export const CHART_EVENT_LIMIT = 10_000

const HOUR_MS = 3_600_000

/** Whether an event is the provider answering well: a token it gave, a refresh, a completed authorization. */
const isProviderSuccess = (event: BrokerEvent): boolean =>
  (event.kind === "token.issued" && event.data.source === "provider") ||
  event.kind === "token.refreshed" ||
  event.kind === "authorization.completed"

/** Why a failure event failed, as it says. */
const whyOf = (event: BrokerEvent): string => {
  const why = event.data.error ?? event.data.reason
  return typeof why === "string" ? why : event.kind
}

/** A connector on the overview. */
export interface ConnectorSummary {
  readonly connector: ConnectorView
  readonly installations: number
  readonly grants: Readonly<Record<"active" | "invalid" | "lost" | "revoked", number>>
  readonly issuedToday: number
  readonly failuresLastHour: number
  readonly lastSuccess: number | undefined
  readonly lastFailure: { readonly at: number; readonly why: string } | undefined
  readonly series: HourlySeries
}

/** The overview: every connector, and the latest events. */
export interface Overview {
  readonly connectors: ReadonlyArray<ConnectorSummary>
  readonly recent: ReadonlyArray<BrokerEvent>
}

/** How many answers a `token.issued` event stands for: `count` for those given from memory, else one. */
const countOf = (event: BrokerEvent): number =>
  typeof event.data.count === "number" && event.data.count > 0 ? event.data.count : 1

/** The summary of one connector from the counts and the last day's events. */
const summaryOf = (
  connector: ConnectorView,
  installations: number,
  counts: ReadonlyArray<{ readonly connectorId: string; readonly status: string; readonly count: number }>,
  issuedToday: number,
  events: ReadonlyArray<BrokerEvent>,
  now: number
): ConnectorSummary => {
  const grants = { active: 0, invalid: 0, lost: 0, revoked: 0 }
  for (const row of counts) {
    if (row.connectorId === connector.id && row.status in grants) grants[row.status as keyof typeof grants] += row.count
  }
  const own = events.filter((event) => event.connector === connector.uid)
  const failures = own.filter((event) => FAILURE_KINDS.includes(event.kind))
  const success = own.find(isProviderSuccess)
  const failure = failures[0]
  return {
    connector,
    installations,
    grants,
    issuedToday,
    failuresLastHour: failures.filter((event) => event.occurredAt >= now - HOUR_MS).length,
    lastSuccess: success?.occurredAt,
    lastFailure: failure === undefined ? undefined : { at: failure.occurredAt, why: whyOf(failure) },
    series: hourly(
      own.flatMap(
        (
          event
        ): ReadonlyArray<{
          readonly occurredAt: number
          readonly outcome: "issued" | "failed"
          readonly count: number
        }> =>
          event.kind === "token.issued"
            ? [{ occurredAt: event.occurredAt, outcome: "issued" as const, count: countOf(event) }]
            : FAILURE_KINDS.includes(event.kind)
              ? [{ occurredAt: event.occurredAt, outcome: "failed" as const, count: 1 }]
              : []
      ),
      now,
      CHART_HOURS
    )
  }
}

/** The overview, as of now. */
export const overview = Effect.gen(function* () {
  const store = yield* Store
  const events = yield* Events
  const admin = yield* Admin
  const now = yield* Clock.currentTimeMillis
  const connectors = yield* admin.listConnectors
  const counts = yield* store.countGrantsByConnector
  const startOfDay = now - (now % (24 * HOUR_MS))
  const issued = yield* store.countIssuedTokensSince(startOfDay)
  // Newest first: the first success or failure found for a connector is its last.
  const lastDay = yield* events.list({
    since: now - CHART_HOURS * HOUR_MS,
    kinds: ["token.issued", "token.refreshed", "authorization.completed", ...FAILURE_KINDS],
    limit: CHART_EVENT_LIMIT
  })
  const summaries = yield* Effect.forEach(connectors, (connector) =>
    Effect.map(store.listInstallations(connector.id), (installations) =>
      summaryOf(
        connector,
        installations.length,
        counts,
        issued.find((row) => row.connectorId === connector.id)?.count ?? 0,
        lastDay,
        now
      )
    )
  )
  const recent = yield* events.list({ limit: 20 })
  return { connectors: summaries, recent } satisfies Overview
})

/** What a connector's page shows. */
export interface ConnectorPage {
  readonly connector: ConnectorView
  readonly grants: GrantList
  readonly tokens: ReadonlyArray<TokenView>
  readonly search: string
}

/** How many grants a page of the connector's page shows. */
export const GRANTS_PER_PAGE = 20

/** A connector's page: its settings, links, installations, a page of its grants, its active tokens. */
export const connectorPage = (name: string, search: string, page: number) =>
  Effect.gen(function* () {
    const admin = yield* Admin
    const connector = yield* admin.showConnector(name)
    const grants = yield* admin.listGrants(connector.uid, {
      search: search === "" ? undefined : search,
      offset: page * GRANTS_PER_PAGE,
      limit: GRANTS_PER_PAGE
    })
    const tokens = yield* admin.listTokens(connector.uid)
    return { connector, grants, tokens, search } satisfies ConnectorPage
  })

/** A project with its keys (as prefixes) and the connectors linked to it. */
export interface ProjectEntry {
  readonly project: Project
  readonly keys: ReadonlyArray<{
    readonly environment: string
    readonly prefix: string | undefined
    readonly createdAt: number
  }>
  readonly links: ReadonlyArray<{ readonly connector: string; readonly environments: ReadonlyArray<string> }>
}

/** Every project, with its keys and links. */
export const projects = Effect.gen(function* () {
  const store = yield* Store
  const connectors = yield* store.listConnectors
  const links = yield* Effect.forEach(connectors, (connector) =>
    Effect.map(store.listConnectorLinks(connector.id), (found) =>
      found.map((link: ConnectorLink) => ({ connector: connector.uid, link }))
    )
  )
  const all = links.flat()
  return yield* Effect.forEach(yield* store.listProjects, (project) =>
    Effect.map(
      store.listProjectKeys(project.id),
      (keys): ProjectEntry => ({
        project,
        keys,
        links: all
          .filter((entry) => entry.link.projectId === project.id)
          .map((entry) => ({ connector: entry.connector, environments: entry.link.environments }))
      })
    )
  )
})

/** The links a test user's authorization may be started through: each connector, project and environment. */
export const tryTargets = Effect.map(projects, (entries) =>
  entries.flatMap((entry) =>
    entry.links.flatMap((link) =>
      link.environments.map((environment) => ({ connector: link.connector, project: entry.project.id, environment }))
    )
  )
)
