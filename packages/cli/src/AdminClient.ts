/**
 * The admin commands' client of the broker's admin API (`/v1/admin/…`): one
 * method per endpoint, answers decoded with the API's schemas, failures as one
 * `AdminRequestError` whose message fits on a line. Its connection settings
 * are `--url` (`CONNECT_URL`) and `--token` (`CONNECT_ADMIN_TOKEN`, then
 * `CONNECT_TOKEN`); the token is never printed.
 *
 * @since 0.1.0
 */
import * as Options from "@effect/cli/Options"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import {
  adminRoutes,
  ConnectorList,
  ConnectorRemoved,
  ConnectorView,
  CreatedKey,
  CreatedWebhook,
  DeliveryList,
  DeliveryView,
  EventList,
  InstallationList,
  InstallationRemoved,
  LinkChanged,
  ProjectList,
  ProjectView,
  WebhookList,
  WebhookRemoved
} from "@effect-connect/broker/AdminApi"
import { closest } from "@effect-connect/broker/Suggest"
import { Config, Context, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { FieldIssue } from "effect-connect/ConnectError"
import { isRecord } from "effect-connect/Json"
import type * as Protocol from "effect-connect/Protocol"
import { describeParseError } from "effect-connect/Protocol"
import { type CliExit, fail, report } from "./Exit.js"
import * as Flags from "./Flags.js"

/**
 * A request to the admin API failed: the broker refused it (`code` is the
 * wire code, `issues` the fields of a `bad_request`), could not be reached, or
 * answered something else than the API defines. The message never holds the
 * admin token.
 *
 * @since 0.1.0
 * @category errors
 */
export class AdminRequestError extends Schema.TaggedError<AdminRequestError>()("AdminRequestError", {
  /** The HTTP status, when the broker answered. */
  status: Schema.optional(Schema.Number),
  code: Schema.String,
  detail: Schema.String,
  issues: Schema.optional(Schema.Array(FieldIssue)),
  /** Where the admin token that was refused came from: `--token`, `CONNECT_ADMIN_TOKEN` or `CONNECT_TOKEN`. */
  credentialSource: Schema.optional(Schema.String),
  /** A known connector near the one that was not found. */
  suggestion: Schema.optional(Schema.String)
}) {
  override get message(): string {
    if (this.issues !== undefined && this.issues.length > 0) {
      const issues = this.issues.map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))
      return `Invalid request: ${issues.join("; ")}`
    }
    if (this.status === undefined) return this.detail
    const said = `${this.detail.charAt(0).toUpperCase()}${this.detail.slice(1)}`
    const near = this.suggestion === undefined ? "" : `; did you mean "${this.suggestion}"?`
    return `${refusedCredential(this.credentialSource, this.status)}${said}${near} (${this.code}, HTTP ${this.status})`
  }
}

/** What a 401 says of the admin token that was sent, and how to send the right one. */
const refusedCredential = (source: string | undefined, status: number): string => {
  if (status !== 401 || source === undefined) return ""
  if (source === "CONNECT_TOKEN") {
    return "The broker refused the admin token: CONNECT_TOKEN was sent as the admin token, since CONNECT_ADMIN_TOKEN is not set; set CONNECT_ADMIN_TOKEN or pass --token. "
  }
  return `The broker refused the admin token given by ${source}. `
}

/**
 * The admin API, one method per endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface AdminApi {
  readonly listConnectors: Effect.Effect<Schema.Schema.Type<typeof ConnectorList>, AdminRequestError>
  readonly showConnector: (connector: string) => Effect.Effect<ConnectorView, AdminRequestError>
  /** `declaration` is shaped like the configuration file's connector, its secrets written as themselves. */
  readonly createConnector: (declaration: Record<string, unknown>) => Effect.Effect<ConnectorView, AdminRequestError>
  readonly removeConnector: (connector: string) => Effect.Effect<ConnectorRemoved, AdminRequestError>
  readonly listInstallations: (connector: string) => Effect.Effect<InstallationList, AdminRequestError>
  readonly removeInstallation: (
    connector: string,
    installation: string
  ) => Effect.Effect<InstallationRemoved, AdminRequestError>
  readonly attach: (
    connector: string,
    project: string,
    environments: ReadonlyArray<string>
  ) => Effect.Effect<LinkChanged, AdminRequestError>
  /** Without environments, the whole link. */
  readonly detach: (
    connector: string,
    project: string,
    environments: ReadonlyArray<string> | undefined
  ) => Effect.Effect<LinkChanged, AdminRequestError>
  readonly listProjects: Effect.Effect<Schema.Schema.Type<typeof ProjectList>, AdminRequestError>
  readonly createProject: (project: {
    readonly id: string
    readonly name?: string
    readonly returnUrls?: ReadonlyArray<string>
  }) => Effect.Effect<ProjectView, AdminRequestError>
  readonly createKey: (project: string, environment: string) => Effect.Effect<CreatedKey, AdminRequestError>
  readonly listWebhooks: (project: string) => Effect.Effect<WebhookList, AdminRequestError>
  /** The secret is generated by the broker when not given. */
  readonly createWebhook: (
    project: string,
    webhook: { readonly url: string; readonly secret?: string; readonly events?: ReadonlyArray<string> }
  ) => Effect.Effect<CreatedWebhook, AdminRequestError>
  readonly removeWebhook: (project: string, webhook: string) => Effect.Effect<WebhookRemoved, AdminRequestError>
  readonly listDeliveries: (
    webhook: string,
    query: { readonly status?: string; readonly limit?: number }
  ) => Effect.Effect<DeliveryList, AdminRequestError>
  readonly retryDelivery: (delivery: string) => Effect.Effect<DeliveryView, AdminRequestError>
  /** A page of the event history; `query` holds the route's parameters (`connector`, `kind`, `after`, …). */
  readonly listEvents: (query: URLSearchParams) => Effect.Effect<EventList, AdminRequestError>
}

const TIMEOUT = Duration.seconds(30)

/** The error of a non-2xx answer, from the protocol's envelope when there is one. */
const refused = (status: number, text: string): AdminRequestError => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  const error = isRecord(json) && isRecord(json.error) ? json.error : {}
  const issues = Array.isArray(error.issues)
    ? error.issues.flatMap((issue) =>
        isRecord(issue) && typeof issue.message === "string"
          ? [{ path: typeof issue.path === "string" ? issue.path : "", message: issue.message }]
          : []
      )
    : []
  return new AdminRequestError({
    status,
    code: typeof error.code === "string" ? error.code : "error",
    detail: typeof error.message === "string" ? error.message : `the broker answered HTTP ${status}`,
    ...(issues.length > 0 ? { issues } : {})
  })
}

/** Why a request could not be sent, in words: the system's error code when there is one (`ECONNREFUSED`). */
const transportReason = (error: { readonly reason: string; readonly cause?: unknown }): string => {
  const inner = isRecord(error.cause) ? error.cause.cause : undefined
  const code =
    isRecord(inner) && typeof inner.code === "string"
      ? inner.code
      : inner instanceof Error && inner.message.length <= 80
        ? inner.message
        : undefined
  const what = error.reason === "Transport" ? "connection failed" : `request failed (${error.reason})`
  return code === undefined ? what : `${what} (${code})`
}

interface Target {
  readonly baseUrl: string
  readonly token: Redacted.Redacted<string>
  /** Where the token came from, named when the broker refuses it. */
  readonly credentialSource?: string | undefined
}

/** Sends one admin request and decodes its answer; every failure is an `AdminRequestError` that names the broker. */
const makeSend = (http: HttpClient.HttpClient, options: Target) => {
  const unreachable = (reason: string) =>
    new AdminRequestError({
      code: "unreachable",
      detail: `Could not reach the broker at ${options.baseUrl}: ${reason}`
    })
  const invalid = (status: number, reason: string) =>
    new AdminRequestError({
      status,
      code: "invalid_response",
      detail: `The broker at ${options.baseUrl} sent an answer the admin API does not define: ${reason}`
    })

  const send = <A, I, M extends Protocol.Method, P extends `/${string}`>(
    route: Protocol.Route<M, P>,
    params: Parameters<Protocol.Route<M, P>["path"]>[0],
    schema: Schema.Schema<A, I>,
    body?: unknown,
    query?: URLSearchParams
  ): Effect.Effect<A, AdminRequestError> =>
    Effect.gen(function* () {
      const search = query === undefined || query.size === 0 ? "" : `?${query.toString()}`
      const base = HttpClientRequest.make(route.method)(`${options.baseUrl}${route.path(params)}${search}`).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bearerToken(options.token)
      )
      const request = body === undefined ? base : HttpClientRequest.bodyUnsafeJson(base, body)
      const [status, text] = yield* http.execute(request).pipe(
        Effect.flatMap((response) => Effect.map(response.text, (text) => [response.status, text] as const)),
        Effect.timeoutFail({
          duration: TIMEOUT,
          onTimeout: () => unreachable(`no answer within ${Duration.format(TIMEOUT)}`)
        }),
        Effect.catchTags({
          RequestError: (error) => Effect.fail(unreachable(transportReason(error))),
          ResponseError: (error) => Effect.fail(unreachable(`the answer could not be read (${error.reason})`))
        })
      )
      if (status < 200 || status >= 300) {
        const error = refused(status, text)
        return yield* status === 401 && options.credentialSource !== undefined
          ? new AdminRequestError({ ...error, credentialSource: options.credentialSource })
          : error
      }
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        return yield* invalid(status, "the body is not JSON")
      }
      return yield* Schema.decodeUnknown(schema)(json).pipe(
        Effect.mapError((error) =>
          invalid(
            status,
            describeParseError(error)
              .map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))
              .join("; ")
          )
        )
      )
    })
  return send
}

/**
 * `request` about `connector`, whose "not found" of that connector suggests
 * the broker's connector nearest to it.
 */
const suggesting =
  (listConnectors: Effect.Effect<Schema.Schema.Type<typeof ConnectorList>, AdminRequestError>) =>
  <A>(connector: string, request: Effect.Effect<A, AdminRequestError>): Effect.Effect<A, AdminRequestError> =>
    Effect.catchIf(
      request,
      (error) => error.status === 404 && error.detail.includes(`"${connector}"`),
      (error) =>
        listConnectors.pipe(
          Effect.map((list) =>
            closest(
              connector,
              list.connectors.map((known) => known.uid)
            )
          ),
          Effect.orElseSucceed(() => undefined),
          Effect.flatMap((near) =>
            Effect.fail(near === undefined ? error : new AdminRequestError({ ...error, suggestion: near }))
          )
        )
    )

const make = (options: Target) =>
  Effect.map(HttpClient.HttpClient, (http): AdminApi => {
    const send = makeSend(http, options)
    const listConnectors = send(adminRoutes.listConnectors, {}, ConnectorList)
    const about = suggesting(listConnectors)
    return {
      listConnectors,
      showConnector: (connector) => about(connector, send(adminRoutes.showConnector, { connector }, ConnectorView)),
      createConnector: (declaration) => send(adminRoutes.createConnector, {}, ConnectorView, declaration),
      removeConnector: (connector) =>
        about(connector, send(adminRoutes.removeConnector, { connector }, ConnectorRemoved)),
      listInstallations: (connector) =>
        about(connector, send(adminRoutes.listInstallations, { connector }, InstallationList)),
      removeInstallation: (connector, installation) =>
        about(connector, send(adminRoutes.removeInstallation, { connector, installation }, InstallationRemoved)),
      attach: (connector, project, environments) =>
        about(connector, send(adminRoutes.attach, { connector, project }, LinkChanged, { environments })),
      detach: (connector, project, environments) =>
        about(
          connector,
          send(
            adminRoutes.detach,
            { connector, project },
            LinkChanged,
            environments === undefined ? {} : { environments }
          )
        ),
      listProjects: send(adminRoutes.listProjects, {}, ProjectList),
      createProject: (project) => send(adminRoutes.createProject, {}, ProjectView, project),
      createKey: (project, environment) => send(adminRoutes.createKey, { project }, CreatedKey, { environment }),
      listWebhooks: (project) => send(adminRoutes.listWebhooks, { project }, WebhookList),
      createWebhook: (project, webhook) => send(adminRoutes.createWebhook, { project }, CreatedWebhook, webhook),
      removeWebhook: (project, webhook) => send(adminRoutes.removeWebhook, { project, webhook }, WebhookRemoved),
      listDeliveries: (webhook, query) =>
        send(
          adminRoutes.listDeliveries,
          { webhook },
          DeliveryList,
          undefined,
          new URLSearchParams({
            ...(query.status === undefined ? {} : { status: query.status }),
            ...(query.limit === undefined ? {} : { limit: String(query.limit) })
          })
        ),
      retryDelivery: (delivery) => send(adminRoutes.retryDelivery, { delivery }, DeliveryView, {}),
      listEvents: (query) => send(adminRoutes.listEvents, {}, EventList, undefined, query)
    }
  })

/**
 * The admin API's client.
 *
 * @since 0.1.0
 * @category tags
 */
export class AdminClient extends Context.Tag("effect-connect/cli/AdminClient")<AdminClient, AdminApi>() {
  /** For a broker's base URL and admin token, over the `HttpClient` in context. */
  static readonly layer = (options: {
    readonly baseUrl: string
    readonly token: Redacted.Redacted<string>
    /** Where the token came from, named when the broker refuses it. */
    readonly credentialSource?: string | undefined
  }): Layer.Layer<AdminClient, never, HttpClient.HttpClient> => Layer.effect(AdminClient, make(options))
}

/**
 * `--url`, `--token` and `--format`, shared by the admin commands.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  url: Options.text("url").pipe(Options.withDescription("The broker (default: CONNECT_URL)"), Options.optional),
  token: Options.redacted("token").pipe(
    Options.withDescription("The admin token (default: CONNECT_ADMIN_TOKEN, then CONNECT_TOKEN); prefer the variable"),
    Options.optional
  ),
  format: Options.choice("format", ["plain", "json"]).pipe(
    Options.withDescription("plain: for people; json: the broker's answer as JSON"),
    Flags.withDefault("plain")
  )
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AdminFlags {
  readonly url: Option.Option<string>
  readonly token: Option.Option<Redacted.Redacted<string>>
}

const setting = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.flatMap((value) => (value.trim().length === 0 ? Option.none() : Option.some(value.trim())))),
    Config.orElse(() => Config.succeed(Option.none<string>()))
  )

const flag = (value: Option.Option<string>) =>
  Option.flatMap(value, (text) => (text.trim().length === 0 ? Option.none() : Option.some(text.trim())))

/**
 * The client for the flags over the environment; a missing or malformed
 * setting stops the command with exit code 2 and says what to set.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (flags: AdminFlags): Layer.Layer<AdminClient, CliExit> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const env = yield* Config.all({
        url: setting("CONNECT_URL"),
        admin: setting("CONNECT_ADMIN_TOKEN"),
        token: setting("CONNECT_TOKEN")
      }).pipe(Effect.orDie)
      const url = Option.orElse(flag(flags.url), () => env.url)
      if (Option.isNone(url)) {
        return yield* fail("No broker to talk to: set CONNECT_URL or pass --url (e.g. http://127.0.0.1:4100)")
      }
      let parsed: URL | undefined
      try {
        parsed = new URL(url.value)
      } catch {
        parsed = undefined
      }
      if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
        return yield* fail("The broker URL (--url or CONNECT_URL) must be an http:// or https:// URL")
      }
      const given = flag(Option.map(flags.token, Redacted.value))
      const [token, credentialSource] = Option.isSome(given)
        ? [given, "--token"]
        : Option.isSome(env.admin)
          ? [env.admin, "CONNECT_ADMIN_TOKEN"]
          : [env.token, "CONNECT_TOKEN"]
      if (Option.isNone(token)) {
        return yield* fail("No admin token: set CONNECT_ADMIN_TOKEN or pass --token")
      }
      return AdminClient.layer({
        baseUrl: url.value.replace(/\/+$/, ""),
        token: Redacted.make(token.value),
        credentialSource
      }).pipe(Layer.provide(FetchHttpClient.layer))
    })
  )

/**
 * Runs an admin request; its failure is printed as one line (exit code 2).
 *
 * @since 0.1.0
 * @category utils
 */
export const request = <A>(f: (client: AdminApi) => Effect.Effect<A, AdminRequestError>) =>
  Effect.flatMap(AdminClient, (client) => f(client).pipe(Effect.catchAll(report)))
