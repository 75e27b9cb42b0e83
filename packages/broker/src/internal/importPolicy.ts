/**
 * Whose tokens an import may write: a project key imports for its own
 * environment only. A preview key that could import a token marked
 * `production` would plant the tokens (and the refresh token) that production
 * callers are then served. Importing for another environment of the same
 * project takes the admin token as well, in `X-Connect-Admin-Token`, and that
 * environment must be linked to the connector.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Option, Redacted } from "effect"
import { type FieldIssue, InvalidRequest } from "effect-connect/ConnectError"
import { AdminToken, matches } from "../AdminToken.js"
import type { Caller, Connector } from "../Store.js"

/**
 * The header that lets an import name other environments of the caller's project.
 *
 * @since 0.1.0
 * @category constants
 */
export const ADMIN_TOKEN_HEADER = "x-connect-admin-token"

/** Whether the request carries the broker's admin token in {@link ADMIN_TOKEN_HEADER}. */
const carriesAdminToken = Effect.gen(function* () {
  const expected = yield* AdminToken
  const request = yield* HttpServerRequest.HttpServerRequest
  const presented = request.headers[ADMIN_TOKEN_HEADER]
  if (Option.isNone(expected) || presented === undefined || presented.length === 0) return false
  return matches(expected.value, Redacted.make(presented))
})

/**
 * Refuses, before anything is written, an import with a token for another
 * environment than the caller key's, naming each such `tokens[i].environment`;
 * with the admin token, a token may be for any environment the connector is
 * linked to the project in.
 */
export const checkImportEnvironments = (
  caller: Caller,
  connector: Connector,
  linked: ReadonlyArray<string>,
  tokens: ReadonlyArray<{ readonly environment: string }>
) =>
  Effect.gen(function* () {
    const foreign = tokens.flatMap((token, index) => (token.environment === caller.environment ? [] : [index]))
    if (foreign.length === 0) return
    const admin = yield* carriesAdminToken
    const issues: Array<FieldIssue> = foreign.flatMap((index): Array<FieldIssue> => {
      const environment = tokens[index]?.environment ?? ""
      const path = `tokens[${index}].environment`
      if (!admin) {
        return [
          {
            path,
            message: `is not the caller key's environment ("${caller.environment}"): import with a key of that environment, or send the admin token in X-Connect-Admin-Token`
          }
        ]
      }
      return linked.includes(environment)
        ? []
        : [{ path, message: "the connector is not linked to this project in that environment" }]
    })
    if (issues.length > 0) return yield* new InvalidRequest({ connector: connector.uid, status: 400, issues })
  })
