/**
 * "Try it": an authorization for a test user started from the dashboard and
 * watched until it completes, and an app token obtained and shown shortened.
 * The dashboard acts as the project of the link chosen; the authorization's
 * verifier (a secret) stays in the sealed session cookie, never in the page.
 *
 * @internal
 */
import { Effect, Option, Redacted } from "effect"
import { Authorizations } from "../../Authorizations.js"
import { Store } from "../../Store.js"
import { Tokens } from "../../Tokens.js"
import { tryTargets } from "./data.js"
import type { SignedIn } from "./gate.js"
import { shortened } from "./html.js"
import { type TryState, type TryTarget, targetValue, tryPage } from "./pages.js"
import { DashboardFormError, dashboardJson, page } from "./responses.js"
import type { Session } from "./session.js"

/** The link a form chose, if it is one of the links there are. */
const chosenTarget = (value: string | undefined) =>
  Effect.gen(function* () {
    const targets = yield* tryTargets
    const target = targets.find((t) => targetValue(t) === value)
    if (target === undefined) return yield* new DashboardFormError({ detail: 'field "target": no such link' })
    const connector = yield* Effect.flatMap(Store, (store) => store.findConnector(target.connector))
    if (Option.isNone(connector)) return yield* new DashboardFormError({ detail: 'field "target": no such connector' })
    return {
      target,
      connector: connector.value,
      caller: { projectId: target.project, environment: target.environment }
    }
  })

/** The status of the authorization the session is trying, as the broker knows it. */
const statusOf = (trying: NonNullable<Session["trying"]>) =>
  Effect.flatMap(Authorizations, (authorizations) =>
    authorizations.status(
      { projectId: trying.project, environment: trying.environment },
      trying.request,
      Redacted.make(trying.verifier)
    )
  ).pipe(
    Effect.map((status) => ({ status: status.status as string, ...(status.error ? { error: status.error } : {}) })),
    Effect.orElseSucceed(() => ({ status: "unknown" }))
  )

/** The "Try it" page, with the authorization under way (if any) and its status now. */
export const showTry = (signed: SignedIn, extra: Omit<TryState, "authorization"> = {}) =>
  Effect.gen(function* () {
    const targets: ReadonlyArray<TryTarget> = yield* tryTargets
    const trying = signed.session.trying
    const authorization =
      trying === undefined ? undefined : { request: trying.request, user: trying.user, ...(yield* statusOf(trying)) }
    const state: TryState = { ...extra, ...(authorization === undefined ? {} : { authorization }) }
    return page(200, tryPage(targets, state, signed.session.csrf))
  })

/** Starts an authorization for a test user; the page links to it and polls its status. */
export const startTry = (
  signed: SignedIn,
  form: { readonly target?: string | undefined; readonly user?: string | undefined }
) =>
  Effect.gen(function* () {
    const user = form.user?.trim() ?? ""
    if (user === "" || user.length > 256) {
      return yield* new DashboardFormError({ detail: 'field "user": 1 to 256 characters' })
    }
    const { target, connector, caller } = yield* chosenTarget(form.target)
    const started = yield* Effect.flatMap(Authorizations, (authorizations) =>
      authorizations.start(caller, connector, { subject: { type: "user", id: user } })
    )
    const session: Session = {
      ...signed.session,
      trying: {
        request: started.request,
        verifier: Redacted.value(started.verifier),
        connector: target.connector,
        user,
        project: target.project,
        environment: target.environment
      }
    }
    const targets = yield* tryTargets
    const state: TryState = { authorization: { url: started.url, request: started.request, status: "pending", user } }
    return yield* signed.keep(session, page(200, tryPage(targets, state, session.csrf)))
  })

/** The status of the authorization under way, as JSON, for the page's script. */
export const tryStatus = (signed: SignedIn) =>
  Effect.map(
    signed.session.trying === undefined ? Effect.succeed({ status: "unknown" }) : statusOf(signed.session.trying),
    dashboardJson
  )

/** An app token for the chosen link, shown shortened with its expiry. */
export const appToken = (signed: SignedIn, form: { readonly target?: string | undefined }) =>
  Effect.gen(function* () {
    const { target, connector, caller } = yield* chosenTarget(form.target)
    const issued = yield* Effect.flatMap(Tokens, (tokens) =>
      tokens.issue(caller, connector, { subject: { type: "app" } })
    )
    return yield* showTry(signed, {
      token: {
        shortened: shortened(Redacted.value(issued.token)),
        expiresAt: issued.expiresAt,
        connector: target.connector
      }
    })
  })
