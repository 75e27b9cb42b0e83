/**
 * The operator's dashboard, served by the broker at `/dashboard` for the
 * holder of the admin token: an overview of the connectors (counts, the
 * providers' health, charts of token requests and failures), a connector's
 * settings, installations, grants and tokens (revoke a grant or a token,
 * remove an installation, each after a confirmation), the projects with
 * their keys and links, and "Try it" (authorize a test user, get an app token).
 *
 * Server-rendered HTML with one stylesheet and one small script, both served
 * here; a strict Content-Security-Policy. Signing in with the admin token opens
 * a session in a sealed cookie (`HttpOnly`, `SameSite=Strict`, `Secure` except
 * on plain HTTP to a loopback address) that every replica sharing the
 * encryption key reads; every change needs the session's CSRF token and a
 * request from the dashboard's own origin. Without an admin token, the
 * dashboard only says how to enable it. See `docs/dashboard.md`.
 *
 * @since 0.2.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Clock, Config, Context, Effect, Layer, Redacted } from "effect"
import { Admin } from "./Admin.js"
import { AdminToken, matches } from "./AdminToken.js"
import { Cipher } from "./Cipher.js"
import { css, js } from "./internal/dashboard/assets.js"
import { crossSiteProblem } from "./internal/dashboard/csrf.js"
import * as Data from "./internal/dashboard/data.js"
import { action, type SignedIn, view } from "./internal/dashboard/gate.js"
import * as Pages from "./internal/dashboard/pages.js"
import { asset, page, readForm, seeOther } from "./internal/dashboard/responses.js"
import {
  DASHBOARD_PATH,
  newSession,
  seal,
  secureCookie,
  withoutSession,
  withSession
} from "./internal/dashboard/session.js"
import { appToken, showTry, startTry, tryStatus } from "./internal/dashboard/tryIt.js"
import { dashboardPath, disabledPage, messagePage, signInPage } from "./internal/dashboard/views.js"
import { PublicUrl } from "./PublicUrl.js"

/**
 * The dashboard's settings.
 *
 * @since 0.2.0
 * @category models
 */
export interface DashboardSettings {
  /** How long a session lasts after signing in, in milliseconds. */
  readonly sessionTtlMs: number
}

/**
 * The environment variable of a session's length, in minutes (default 480: eight hours).
 *
 * @since 0.2.0
 * @category constants
 */
export const SESSION_MINUTES_VARIABLE = "CONNECT_DASHBOARD_SESSION_MINUTES"

/**
 * The dashboard's settings, as a service.
 *
 * @since 0.2.0
 * @category tags
 */
export class Dashboard extends Context.Tag("effect-connect/broker/Dashboard")<Dashboard, DashboardSettings>() {
  /** Fixed settings, for tests and embedding. */
  static readonly layer = (settings: DashboardSettings): Layer.Layer<Dashboard> => Layer.succeed(Dashboard, settings)

  /** From `CONNECT_DASHBOARD_SESSION_MINUTES` (1 to 10080; default 480). */
  static readonly layerConfig = Layer.effect(
    Dashboard,
    Config.integer(SESSION_MINUTES_VARIABLE).pipe(
      Config.validate({ message: "Expected 1 to 10080 minutes", validation: (n) => n >= 1 && n <= 10_080 }),
      Config.withDefault(480),
      Effect.map((minutes): DashboardSettings => ({ sessionTtlMs: minutes * 60_000 }))
    )
  )
}

/** Signs in with the admin token: a new session, then the overview. */
const signIn = Effect.gen(function* () {
  const token = yield* AdminToken
  if (token._tag === "None") return page(404, disabledPage())
  const request = yield* HttpServerRequest.HttpServerRequest
  const crossSite = crossSiteProblem(request.headers)
  if (crossSite !== undefined) return page(403, messagePage("Refused", `Refused: ${crossSite}.`, undefined))
  const form = yield* readForm(["token"])
  if (form.token === undefined || !matches(token.value, Redacted.make(form.token))) {
    yield* Effect.logWarning("dashboard: a sign-in with a wrong admin token")
    return page(401, signInPage("That is not the admin token."))
  }
  const now = yield* Clock.currentTimeMillis
  const session = newSession(token.value, now, (yield* Dashboard).sessionTtlMs)
  const sealed = yield* seal(yield* Cipher, session)
  yield* Effect.logInfo("dashboard: signed in")
  return withSession(sealed, session, now, secureCookie(yield* PublicUrl))(seeOther(DASHBOARD_PATH))
}).pipe(Effect.catchTag("DashboardFormError", (error) => Effect.succeed(page(400, signInPage(error.detail)))))

const signOut = action([], () =>
  Effect.map(PublicUrl, (url) => withoutSession(secureCookie(url))(seeOther(DASHBOARD_PATH)))
)

const param = (name: string) => Effect.map(HttpRouter.params, (params) => params[name] ?? "")

const overview = view((signed) =>
  Effect.map(Data.overview, (o) => page(200, Pages.overviewPage(o, signed.session.csrf)))
)

const connector = view((signed) =>
  Effect.gen(function* () {
    const url = new URL((yield* HttpServerRequest.HttpServerRequest).url, "http://dashboard")
    const search = (url.searchParams.get("user") ?? "").slice(0, 256)
    const index = Math.min(Math.max(0, Number.parseInt(url.searchParams.get("page") ?? "0", 10) || 0), 50_000)
    const found = yield* Data.connectorPage(yield* param("connector"), search, index)
    return page(200, Pages.connectorView(found, signed.session.csrf))
  })
)

/** The changes a connector's page offers, each confirmed on a page of its own first. */
const CHANGES = {
  "revoke-grant": {
    segment: "grants",
    param: "grant",
    verb: "revoke",
    title: (id: string) => `Revoke grant ${id}?`,
    text: "The grant's refresh token and the tokens issued from it are revoked at the provider and no longer handed out; the user must authorize again.",
    button: "Revoke the grant",
    run: (uid: string, id: string) => Effect.flatMap(Admin, (admin) => admin.revokeGrant(uid, id))
  },
  "revoke-token": {
    segment: "tokens",
    param: "token",
    verb: "revoke",
    title: (id: string) => `Revoke token ${id}?`,
    text: "The token is revoked at the provider (when the connector can) and no longer handed out.",
    button: "Revoke the token",
    run: (uid: string, id: string) => Effect.flatMap(Admin, (admin) => admin.revokeToken(uid, id))
  },
  "remove-installation": {
    segment: "installations",
    param: "installation",
    verb: "remove",
    title: (id: string) => `Remove installation ${id}?`,
    text: "Every token and grant made within the installation is revoked at the provider, then the installation and its grants are deleted.",
    button: "Remove the installation",
    run: (uid: string, id: string) =>
      Effect.flatMap(Admin, (admin) =>
        Effect.map(admin.removeInstallation(uid, id), (done) => ({ revoked: id, tokensFound: done.tokensFound }))
      )
  }
} as const

type Change = (typeof CHANGES)[keyof typeof CHANGES]

const changePath = (change: Change): `/${string}` =>
  `${DASHBOARD_PATH}/connectors/:connector/${change.segment}/:${change.param}/${change.verb}`

/** The confirmation page of a change. */
const confirmChange = (change: Change) =>
  view((signed: SignedIn) =>
    Effect.gen(function* () {
      const uid = yield* param("connector")
      const id = yield* param(change.param)
      const here = dashboardPath("connectors", uid, change.segment, id, change.verb)
      const confirm = { title: change.title(id), text: change.text, action: here, button: change.button }
      return page(200, Pages.confirmPage(confirm, dashboardPath("connectors", uid), signed.session.csrf))
    })
  )

/** A confirmed change, then a page saying what it did. */
const runChange = (change: Change) =>
  action([], (signed) =>
    Effect.gen(function* () {
      const uid = yield* param("connector")
      const id = yield* param(change.param)
      const done = yield* change.run(uid, id)
      const text = `Done: ${id} (${done.tokensFound} tokens found and revoked).`
      const back = { href: dashboardPath("connectors", uid), label: `Back to ${uid}` }
      return page(200, messagePage("Done", text, { section: "overview", csrf: signed.session.csrf }, back))
    })
  )

const projects = view((signed) =>
  Effect.map(Data.projects, (entries) => page(200, Pages.projectsPage(entries, signed.session.csrf, undefined)))
)

const createKey = action(["environment"], (signed, form) =>
  Effect.gen(function* () {
    const project = yield* param("project")
    const environment = form.environment?.trim() ?? ""
    if (environment === "" || environment.length > 256) {
      return page(400, messagePage("Invalid form", 'field "environment": 1 to 256 characters', undefined))
    }
    const created = yield* Effect.flatMap(Admin, (admin) => admin.createKey(project, environment))
    const entries = yield* Data.projects
    const shown = { project, environment, key: Redacted.value(created.key) }
    return page(201, Pages.projectsPage(entries, signed.session.csrf, shown))
  })
)

/**
 * The dashboard's routes, under `/dashboard`.
 *
 * @since 0.2.0
 * @category routes
 */
export const router = HttpRouter.empty.pipe(
  HttpRouter.get(DASHBOARD_PATH, overview),
  HttpRouter.get(`${DASHBOARD_PATH}/assets/dashboard.css`, Effect.succeed(asset(css, "text/css; charset=utf-8"))),
  HttpRouter.get(`${DASHBOARD_PATH}/assets/dashboard.js`, Effect.succeed(asset(js, "text/javascript; charset=utf-8"))),
  HttpRouter.post(`${DASHBOARD_PATH}/sign-in`, signIn),
  HttpRouter.post(`${DASHBOARD_PATH}/sign-out`, signOut),
  HttpRouter.get(`${DASHBOARD_PATH}/connectors/:connector`, connector),
  HttpRouter.get(changePath(CHANGES["revoke-grant"]), confirmChange(CHANGES["revoke-grant"])),
  HttpRouter.post(changePath(CHANGES["revoke-grant"]), runChange(CHANGES["revoke-grant"])),
  HttpRouter.get(changePath(CHANGES["revoke-token"]), confirmChange(CHANGES["revoke-token"])),
  HttpRouter.post(changePath(CHANGES["revoke-token"]), runChange(CHANGES["revoke-token"])),
  HttpRouter.get(changePath(CHANGES["remove-installation"]), confirmChange(CHANGES["remove-installation"])),
  HttpRouter.post(changePath(CHANGES["remove-installation"]), runChange(CHANGES["remove-installation"])),
  HttpRouter.get(`${DASHBOARD_PATH}/projects`, projects),
  HttpRouter.post(`${DASHBOARD_PATH}/projects/:project/keys`, createKey),
  HttpRouter.get(
    `${DASHBOARD_PATH}/try`,
    view((signed) => showTry(signed))
  ),
  HttpRouter.get(`${DASHBOARD_PATH}/try/status`, view(tryStatus)),
  HttpRouter.post(`${DASHBOARD_PATH}/try/authorize`, action(["target", "user"], startTry)),
  HttpRouter.post(`${DASHBOARD_PATH}/try/token`, action(["target"], appToken))
)
