/**
 * Reading what a provider's OAuth 2.0 endpoints answer: the bodies (JSON, or
 * form-encoded from older providers), the error codes they send and what each
 * means to the broker, and the cleaning of provider text before it goes into
 * an error.
 */
import { isRecord } from "effect-connect/Json"

/**
 * What a failure of a provider endpoint means to the broker.
 *
 * - `invalid_grant`: the grant is gone (revoked, expired, already used); the user must authorize again.
 * - `invalid_client`: the broker's client credentials are wrong (client id, secret or auth method).
 * - `invalid_scope`: a requested scope is not allowed.
 * - `invalid_target`: a requested resource or audience is not allowed (RFC 8707, RFC 8693).
 * - `unsupported`: the grant type or token type is not supported or not allowed for the client.
 * - `transient`: network failure, timeout, 429 or 5xx; retrying later may succeed.
 * - `invalid_response`: a success answer that is not a valid response (not JSON, empty, a field missing).
 * - `authorization_pending`, `slow_down`, `expired_token`, `access_denied`: the answers to a device code
 *   poll (RFC 8628 section 3.5): the user has not finished yet, poll less often, the device code expired,
 *   the user refused. Only the device code grant reports them; to every other request, the last two mean
 *   `invalid_grant` and the first two `other` (see {@link outsideDeviceFlow}). None is transient.
 * - `other`: any other refusal.
 */
export const PROVIDER_ERROR_KINDS = [
  "invalid_grant",
  "invalid_client",
  "invalid_scope",
  "invalid_target",
  "unsupported",
  "transient",
  "invalid_response",
  "authorization_pending",
  "slow_down",
  "expired_token",
  "access_denied",
  "other"
] as const

export type ProviderErrorKind = (typeof PROVIDER_ERROR_KINDS)[number]

/**
 * The error codes providers send, standard and not, and their kind. This is
 * the one place the mapping lives: add a provider's code here. Codes are
 * looked up in lower case; a code not listed is `other` (or `invalid_client`
 * on HTTP 401).
 */
export const ERROR_CODE_KINDS: { readonly [code: string]: ProviderErrorKind } = {
  // RFC 6749 section 5.2
  invalid_request: "other",
  invalid_client: "invalid_client",
  invalid_grant: "invalid_grant",
  unauthorized_client: "unsupported",
  unsupported_grant_type: "unsupported",
  invalid_scope: "invalid_scope",
  // RFC 6749 section 4.1.2.1, also sent by some token endpoints
  server_error: "transient",
  temporarily_unavailable: "transient",
  // RFC 7009 section 2.2.1
  unsupported_token_type: "unsupported",
  // RFC 8707 section 2, RFC 8693 section 2.2.2
  invalid_target: "invalid_target",
  // RFC 8628 section 3.5: the answers to a device code poll
  authorization_pending: "authorization_pending",
  slow_down: "slow_down",
  expired_token: "expired_token",
  access_denied: "access_denied",
  // RFC 6750 section 3.1: sent by some revocation endpoints (Google) for a token that is already dead
  invalid_token: "invalid_grant",
  // GitHub
  bad_verification_code: "invalid_grant",
  bad_refresh_token: "invalid_grant",
  incorrect_client_credentials: "invalid_client",
  // Microsoft Entra: the user declined a device authorization
  // (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code)
  authorization_declined: "access_denied",
  // Twitch: a device code that expired, or was used (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/)
  "invalid device code": "expired_token",
  "invalid refresh token": "invalid_grant",
  // Slack (HTTP 200 with `ok: false`)
  invalid_refresh_token: "invalid_grant",
  invalid_code: "invalid_grant",
  code_already_used: "invalid_grant",
  token_revoked: "invalid_grant",
  token_expired: "invalid_grant",
  invalid_client_id: "invalid_client",
  bad_client_secret: "invalid_client",
  ratelimited: "transient"
}

/**
 * The kind of an error answer: 408, 429 and 5xx are transient whatever the
 * code; otherwise the code decides; an unknown or missing code on HTTP 401
 * means the client failed to authenticate (RFC 6749 section 5.2).
 */
export const kindOf = (status: number, code: string | undefined): ProviderErrorKind => {
  if (status === 408 || status === 429 || status >= 500) return "transient"
  const known = code === undefined ? undefined : ERROR_CODE_KINDS[code.toLowerCase()]
  if (known !== undefined) return known
  return status === 401 ? "invalid_client" : "other"
}

/**
 * What a device-flow kind means to any request but a device code poll: the
 * grant is gone (`expired_token`, `access_denied`), or a refusal like any
 * other (`authorization_pending`, `slow_down`). Other kinds are kept.
 */
export const outsideDeviceFlow = (kind: ProviderErrorKind): ProviderErrorKind => {
  switch (kind) {
    case "expired_token":
    case "access_denied":
      return "invalid_grant"
    case "authorization_pending":
    case "slow_down":
      return "other"
    default:
      return kind
  }
}

/**
 * A body as data: JSON when it parses, the fields of a form-encoded body when
 * the answer says it is one (`application/x-www-form-urlencoded`, as GitHub
 * sends without `Accept: application/json`), otherwise `undefined`.
 */
export const readBody = (text: string, contentType: string | undefined): unknown => {
  if (text.trim().length === 0) return undefined
  try {
    return JSON.parse(text)
  } catch {
    // not JSON: maybe form-encoded
  }
  if (contentType?.toLowerCase().includes("application/x-www-form-urlencoded") === true) {
    const fields: Record<string, string> = {}
    for (const [key, value] of new URLSearchParams(text)) {
      if (!(key in fields)) fields[key] = value
    }
    return fields
  }
  return undefined
}

/** The code and description of an error answer, as the provider sent them. */
export interface ErrorAnswer {
  readonly code: string | undefined
  readonly description: string | undefined
}

const str = (value: unknown): string | undefined => (typeof value === "string" && value.length > 0 ? value : undefined)

/**
 * The error a body reports, or `undefined` when it reports none: OAuth's
 * `error` and `error_description`, Slack's `{ "ok": false, "error": ... }`, or
 * an `error` object with a `code` (or `type`) and a `message`.
 */
export const errorOf = (body: unknown): ErrorAnswer | undefined => {
  if (!isRecord(body)) return undefined
  const error = body.error
  if (typeof error === "string") {
    return { code: str(error), description: str(body.error_description) ?? str(body.message) }
  }
  if (isRecord(error)) {
    const code = str(error.code) ?? (typeof error.code === "number" ? String(error.code) : str(error.type))
    return { code, description: str(error.message) ?? str(error.description) }
  }
  if (body.ok === false) return { code: undefined, description: str(body.error_description) ?? str(body.message) }
  return hubSpotError(body) ?? twitchError(body)
}

/**
 * HubSpot's own error shape, as its date-versioned OAuth API answers
 * (https://developers.hubspot.com/docs/api-reference/2026-03/authentication/manage-oauth-tokens):
 * `{ "category", "message", "correlationId" }`, perhaps with a `subCategory`.
 */
const hubSpotError = (body: Readonly<Record<string, unknown>>): ErrorAnswer | undefined => {
  const category = str(body.category)
  if (category === undefined || str(body.correlationId) === undefined) return undefined
  return { code: str(body.subCategory) ?? category, description: str(body.message) }
}

/**
 * Twitch's shape, `{ "status": 400, "message": "authorization_pending" }`: the
 * code is the message, when it is one the table knows
 * (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#device-code-grant-flow).
 */
const twitchError = (body: Readonly<Record<string, unknown>>): ErrorAnswer | undefined => {
  const message = str(body.message)
  if (typeof body.status !== "number" || message === undefined) return undefined
  const code = message.toLowerCase()
  return Object.hasOwn(ERROR_CODE_KINDS, code) ? { code, description: undefined } : undefined
}

/**
 * The description of any error answer (or of an error body that `errorOf`
 * does not recognise): what `errorOf` reads, else a top-level `message`.
 */
export const errorOfAnyBody = (body: unknown): ErrorAnswer => {
  const known = errorOf(body)
  if (known !== undefined) return known
  return { code: undefined, description: isRecord(body) ? str(body.message) : undefined }
}

const REDACTED = "[redacted]"

/**
 * Provider (or network) text made fit for an error: every secret sent in the
 * request replaced, control characters and runs of white space collapsed, and
 * at most `max` characters kept.
 */
export const cleanText = (text: string, secrets: ReadonlyArray<string>, max: number): string | undefined => {
  let cleaned = text
  for (const secret of secrets) {
    if (secret.length >= 4) cleaned = cleaned.split(secret).join(REDACTED)
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  cleaned = cleaned.replace(/[\u0000-\u001f\u007f\s]+/g, " ").trim()
  if (cleaned.length === 0) return undefined
  return cleaned.length <= max ? cleaned : `${cleaned.slice(0, max - 1).trimEnd()}…`
}

/**
 * A value encoded as `application/x-www-form-urlencoded`, as RFC 6749
 * appendix B requires for the client id and secret of HTTP Basic
 * authentication (section 2.3.1).
 */
export const formEncode = (value: string): string =>
  encodeURIComponent(value)
    .replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+")

/** The `Authorization` header of `client_secret_basic`. */
export const basicAuthorization = (clientId: string, clientSecret: string): string =>
  `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`, "utf8").toString("base64")}`

/**
 * An endpoint as it may appear in an error: scheme, host and path only (no
 * user info, no query: either may carry a credential).
 */
export const endpointForDisplay = (url: URL): string => `${url.origin}${url.pathname}`
