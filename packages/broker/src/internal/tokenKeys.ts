/**
 * How tokens and grants are keyed in the store: a subject's identity, a
 * grant's (within its project), the request a stored token answers, and the
 * scopes a request asks for.
 *
 * @since 0.2.0
 */
import { createHash } from "node:crypto"
import { Redacted } from "effect"
import { canonicalJson } from "effect-connect/Json"
import * as RequestKey from "effect-connect/RequestKey"
import type { Subject } from "effect-connect/Subject"
import type { TokenRequest } from "effect-connect/Token"
import type { Connector } from "../Store.js"

/**
 * The identity of a subject as stored: plain text a database column can hold
 * (JSON escapes any control character), with secrets only as digests.
 *
 * @since 0.1.0
 * @category utils
 */
export const subjectKey = (subject: Subject): string => {
  switch (subject.type) {
    case "app":
      return "app"
    case "user":
      return `user:${JSON.stringify([subject.issuer ?? null, subject.id])}`
    case "jwt-bearer":
      return `jwt-bearer:${RequestKey.digest(canonicalJson(subject))}`
    case "token":
      return `token:${RequestKey.digest(Redacted.value(subject.token))}`
  }
}

/**
 * The subject of an installation's own grant (a Slack bot token, say): the
 * tenant's, whichever project asks.
 *
 * @since 0.1.0
 * @category constants
 */
export const INSTALLATION_SUBJECT = "installation"

/**
 * The identity of a grant: the subject within the caller's project. User ids
 * are the application's own, so two projects may both have a user "u1" who are
 * different people; a grant made for one project is never used for another.
 *
 * @since 0.1.0
 * @category utils
 */
export const grantSubject = (projectId: string, subject: Subject): string =>
  `${JSON.stringify(projectId)}:${subjectKey(subject)}`

/**
 * Whom a stored grant is for: its project and subject (as `subjectKey`
 * gives it), read back from `grantSubject`; an installation's own grant has
 * no project.
 *
 * @since 0.1.0
 * @category utils
 */
export const grantOwner = (stored: string): { readonly projectId?: string; readonly subject: string } => {
  const match = /^("(?:[^"\\]|\\.)*"):(.*)$/s.exec(stored)
  if (match?.[1] === undefined || match[2] === undefined) return { subject: stored }
  const projectId: unknown = JSON.parse(match[1])
  return typeof projectId === "string" ? { projectId, subject: match[2] } : { subject: stored }
}

/** The request a stored token answers: its subject, installation, scopes and targets. */
export const requestKeyOf = (request: TokenRequest, installationId: string, scopes: ReadonlyArray<string>): string => {
  const key = RequestKey.make("broker", "connector", {
    subject: request.subject,
    installationId: installationId === "" ? undefined : installationId,
    scopes,
    resources: request.resources,
    audience: request.audience,
    authorizationDetails: request.authorizationDetails
  })
  return createHash("sha256")
    .update(key?.id ?? canonicalJson(request))
    .digest("base64url")
}

/**
 * The scopes a request asks the provider for: its own, or for `["*"]` (or none)
 * the connector's defaults for the subject type.
 *
 * @since 0.1.0
 * @category utils
 */
export const scopesFor = (connector: Connector, request: TokenRequest): ReadonlyArray<string> => {
  const requested = request.scopes ?? ["*"]
  if (requested.length === 1 && requested[0] === "*") {
    return (
      (request.subject.type === "app" ? connector.settings.defaultScopes.app : connector.settings.defaultScopes.user) ??
      []
    )
  }
  return requested
}
