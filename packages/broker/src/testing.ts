/**
 * A quirk kit for tests: an OAuth provider on 127.0.0.1 (node:http, a free
 * port) that answers as a real provider of the catalogue does, in the mode of
 * one preset: its answer shape (JSON or form-encoded, errors with HTTP 200,
 * `expires_in` as a number, a string or absent, Slack's `authed_user`), its
 * client authentication, its refresh token rotation (with a grace period),
 * what revoking means there, its installation callbacks, and GitHub App
 * installation tokens with the app's JWT verified (signature, `iss`, `exp`),
 * the device authorization grant (RFC 8628) as each provider that offers it
 * runs it, a refresh endpoint of its own (Figma), comma-separated scopes
 * (Linear), and a revocation that takes JSON (Notion). Faults are injected per
 * request.
 *
 * ```ts
 * const provider = await startQuirkProvider({ preset: "slack" })
 * const connector = { uid: "slack/acme", ...provider.connector() } // for the broker's configuration
 * provider.fail({ error: "invalid_grant" }) // the next token request is refused, as Slack refuses
 * await provider.close()
 * ```
 *
 * It is a stand-in, not a specification: it reproduces what the broker
 * depends on, as the providers' documentation describes it.
 *
 * @since 0.2.0
 */
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { importSPKI, jwtVerify } from "jose"
import { type AnswerShape, findPreset, type Preset } from "./providers/Presets.js"

/**
 * How the next token request fails: an OAuth error (in the preset's error
 * shape), or an HTTP status with an empty JSON body.
 *
 * @since 0.2.0
 * @category models
 */
export type QuirkFault = { readonly error: string } | { readonly status: number }

/**
 * One request as the provider saw it.
 *
 * @since 0.2.0
 * @category models
 */
export interface QuirkRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly form: Readonly<Record<string, string>>
  /** The status answered. */
  status: number
}

/**
 * How the provider is started.
 *
 * @since 0.2.0
 * @category models
 */
export interface QuirkProviderOptions {
  /** The preset whose quirks are reproduced, by name or as a preset. */
  readonly preset: string | Preset
  readonly clientId?: string
  readonly clientSecret?: string
  /** The lifetime of access tokens, in seconds (default 3600). */
  readonly lifetimeSeconds?: number
  /** Answer form-encoded even when `Accept` asks for JSON (for a preset whose body is `form`). */
  readonly ignoreAccept?: boolean
  /** The grace period of a rotated refresh token, in seconds (default: the preset's). */
  readonly graceSeconds?: number
  /** A GitHub App's id and public key (SPKI PEM): its JWTs are verified with them. */
  readonly app?: { readonly appId: string; readonly publicKey: string }
  /** The tenant id installations are made for (default `T0001`, or `4242` for a GitHub App). */
  readonly tenantId?: string
  /** Another answer shape than the preset's, in part (`{ expiresIn: "string" }`, as Azure AD v1 answers). */
  readonly answer?: Partial<AnswerShape>
  /** The `interval` of device authorizations, in seconds (default 5, as RFC 8628 section 3.2 says). */
  readonly deviceIntervalSeconds?: number
}

/**
 * A running quirk provider.
 *
 * @since 0.2.0
 * @category models
 */
export interface QuirkProvider {
  readonly url: string
  readonly preset: Preset
  readonly clientId: string
  readonly clientSecret: string
  /** The tenant its installations are for. */
  readonly tenantId: string
  /** The connector fields that point a connector with this preset at this provider. */
  readonly connector: () => Readonly<Record<string, unknown>>
  /** Every request so far, in order. */
  readonly requests: ReadonlyArray<QuirkRequest>
  /** The token requests of a grant type (`refresh_token`, ...), at the token endpoint or a tenant's. */
  readonly tokenRequests: (grantType: string) => ReadonlyArray<QuirkRequest>
  /** The tokens revoked so far. */
  readonly revoked: ReadonlySet<string>
  /** The access tokens issued so far, in order. */
  readonly accessTokens: ReadonlyArray<string>
  /** Fails the next token request (faults queue up). */
  readonly fail: (fault: QuirkFault) => void
  /** Expires a device authorization now, by its user code: its next poll is refused with `expired_token`. */
  readonly expireDevice: (userCode: string) => void
  /** The device authorizations so far, by user code, with what became of each. */
  readonly devices: ReadonlyMap<
    string,
    { readonly scope: string; readonly status: DeviceStatus; readonly polls: number }
  >
  readonly close: () => Promise<void>
}

interface Code {
  readonly challenge: string
  readonly scope: string
  readonly userScope: string
}

/**
 * What became of a device authorization at the provider.
 *
 * @since 0.2.0
 * @category models
 */
export type DeviceStatus = "pending" | "approved" | "denied" | "expired" | "used"

interface Device {
  readonly deviceCode: string
  readonly userCode: string
  readonly scope: string
  status: DeviceStatus
  intervalMs: number
  readonly expiresAt: number
  lastPollAt: number | undefined
  polls: number
}

interface RefreshToken {
  readonly grant: string
  spentAt: number | undefined
}

/** What the server holds while it runs. */
interface State {
  readonly preset: Preset
  readonly options: QuirkProviderOptions
  readonly clientId: string
  readonly clientSecret: string
  readonly tenantId: string
  readonly url: () => string
  readonly requests: Array<QuirkRequest>
  readonly faults: Array<QuirkFault>
  readonly codes: Map<string, Code>
  readonly refreshTokens: Map<string, RefreshToken>
  readonly accessTokens: Array<string>
  /** The grant of each access token issued. */
  readonly accessGrants: Map<string, string>
  readonly revoked: Set<string>
  readonly revokedGrants: Set<string>
  /** Device authorizations by user code. */
  readonly devices: Map<string, Device>
}

const token = (prefix: string): string => `${prefix}-${randomBytes(12).toString("hex")}`

/** Answers, and says with which status. */
const send = (res: ServerResponse, status: number, body: unknown, form = false): number => {
  if (form && typeof body === "object" && body !== null) {
    const params = new URLSearchParams()
    for (const [key, value] of Object.entries(body)) if (value !== undefined) params.set(key, String(value))
    res.writeHead(status, { "content-type": "application/x-www-form-urlencoded; charset=utf-8" })
    res.end(params.toString())
    return status
  }
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
  return status
}

/** An OAuth error as the preset's provider sends it. */
const sendError = (
  state: State,
  res: ServerResponse,
  status: number,
  error: string,
  extra: Readonly<Record<string, unknown>> = {}
): number => {
  switch (state.preset.answer.errors) {
    case "ok_false":
      send(res, 200, { ok: false, error })
      return 200
    case "error_200":
      send(res, 200, {
        error,
        error_description: `The ${error} error`,
        error_uri: "https://docs.example/errors",
        ...extra
      })
      return 200
    case "hubspot":
      // https://developers.hubspot.com/docs/api-reference/2026-03/authentication/oauth-tokens/refresh-oauth-token
      send(res, status, {
        status: "error",
        message: `The ${error} error`,
        correlationId: randomUUID(),
        category: status === 401 ? "INVALID_AUTHENTICATION" : "VALIDATION_ERROR"
      })
      return status
    case "message":
      // Twitch: the code is the message (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/).
      send(res, status, { status, message: error })
      return status
    default:
      send(res, status, { error, error_description: `The ${error} error`, ...extra })
      return status
  }
}

const readForm = (req: IncomingMessage): Promise<Record<string, string>> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("error", reject)
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      if (!String(req.headers["content-type"] ?? "").includes("json")) {
        resolve(Object.fromEntries(new URLSearchParams(text)))
        return
      }
      try {
        const parsed: unknown = JSON.parse(text)
        const entries = typeof parsed === "object" && parsed !== null ? Object.entries(parsed) : []
        resolve(Object.fromEntries(entries.map(([key, value]) => [key, String(value)])))
      } catch {
        resolve({})
      }
    })
  })

/** Whether the client authenticated as the preset's method says, with the right id and secret. */
const authenticated = (state: State, req: IncomingMessage, form: Record<string, string>): boolean => {
  if (state.preset.settings.tokenEndpointAuthMethod === "client_secret_post") {
    return form.client_id === state.clientId && form.client_secret === state.clientSecret
  }
  const header = req.headers.authorization ?? ""
  if (!header.startsWith("Basic ")) return false
  const decoded = Buffer.from(header.slice(6), "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  const formDecode = (text: string) => decodeURIComponent(text.replace(/\+/g, " "))
  return (
    formDecode(decoded.slice(0, colon)) === state.clientId &&
    formDecode(decoded.slice(colon + 1)) === state.clientSecret
  )
}

/** The `expires_in` member in the preset's shape. */
const expiresIn = (state: State): Record<string, unknown> => {
  const seconds = state.options.lifetimeSeconds ?? 3600
  switch (state.preset.answer.expiresIn) {
    case "absent":
      return {}
    case "string":
      return { expires_in: String(seconds) }
    default:
      return { expires_in: seconds }
  }
}

/** Sets a dotted path (`team.id`) of an object. */
const setPath = (target: Record<string, unknown>, path: string, value: string): void => {
  const keys = path.split(".")
  let current = target
  for (const key of keys.slice(0, -1)) {
    const next = current[key]
    current[key] = typeof next === "object" && next !== null ? next : {}
    current = current[key] as Record<string, unknown>
  }
  current[keys[keys.length - 1] ?? path] = value
}

/** A new access token (and refresh token, when the preset refreshes) for a grant. */
const issueTokens = (state: State, grant: string, withRefresh: boolean, scope: string): Record<string, unknown> => {
  const access = token("at")
  state.accessTokens.push(access)
  state.accessGrants.set(access, grant)
  const answer: Record<string, unknown> = { access_token: access, token_type: "bearer", ...expiresIn(state) }
  if (scope !== "") answer.scope = state.preset.answer.scope === "array" ? scope.split(" ") : scope
  if (withRefresh && state.preset.grants.includes("refresh_token")) {
    const refresh = token("rt")
    state.refreshTokens.set(refresh, { grant, spentAt: undefined })
    answer.refresh_token = refresh
  }
  return answer
}

/**
 * Shopify's offline token for a code exchange without `expiring=1`: it never
 * expires and has no refresh token
 * (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens).
 */
const nonExpiring = (state: State, code: Code): Record<string, unknown> => {
  const { access_token, scope } = issueTokens(state, token("grant"), false, code.scope)
  return { access_token, scope }
}

/** The answer to a code: the preset's shape, the installation's tenant where the preset reads it. */
const codeAnswer = (state: State, code: Code, form: Record<string, string>): Record<string, unknown> => {
  if (state.preset.name === "shopify" && form.expiring !== "1") return nonExpiring(state, code)
  const grant = token("grant")
  const slack = state.preset.answer.userToken === "authed_user"
  const tenantPath = state.preset.settings.installations?.tenantIdFrom
  const answer: Record<string, unknown> = slack && code.scope === "" ? {} : issueTokens(state, grant, true, code.scope)
  if (slack) {
    answer.ok = true
    if (code.scope !== "") answer.token_type = "bot"
    if (code.userScope !== "") {
      answer.authed_user = { id: "U0001", ...issueTokens(state, grant, true, code.userScope), token_type: "user" }
    }
  }
  if (tenantPath !== undefined && "tokenResponse" in tenantPath)
    setPath(answer, tenantPath.tokenResponse, state.tenantId)
  return answer
}

/** The refresh token grant: rotation as the preset says, with a grace period for the spent one. */
const refresh = (state: State, form: Record<string, string>, now: number): Record<string, unknown> | undefined => {
  const held = state.refreshTokens.get(form.refresh_token ?? "")
  if (held === undefined || state.revokedGrants.has(held.grant)) return undefined
  const grace = (state.options.graceSeconds ?? state.preset.settings.refreshTokenGracePeriodSeconds ?? 0) * 1000
  if (held.spentAt !== undefined && now - held.spentAt > grace) return undefined
  // `optional` rotation is the case the broker must survive: no new refresh token, the old one kept.
  const rotate = state.preset.rotation === "always"
  if (rotate && held.spentAt === undefined) held.spentAt = now
  const answer = issueTokens(state, held.grant, rotate, form.scope ?? "")
  return state.preset.answer.userToken === "authed_user" ? { ok: true, ...answer } : answer
}

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

/**
 * The status of a device poll's error: Google answers `authorization_pending`
 * with 428 and `slow_down` and `access_denied` with 403
 * (https://developers.google.com/identity/protocols/oauth2/limited-input-device#step-6:-handle-responses-to-polling-requests);
 * the others 400 (GitHub's errors come with 200, in its error shape).
 */
const devicePollStatus = (state: State, error: string): number => {
  if (state.preset.name !== "google") return 400
  if (error === "authorization_pending") return 428
  return error === "slow_down" || error === "access_denied" ? 403 : 400
}

/**
 * A device poll's error as the provider names it: Microsoft's
 * `authorization_declined`, Twitch's `invalid device code`, GitHub's
 * `incorrect_device_code`.
 */
const deviceErrorName = (state: State, error: string): string => {
  if (state.preset.name === "microsoft" && error === "access_denied") return "authorization_declined"
  if (state.preset.answer.errors === "message" && (error === "expired_token" || error === "invalid_grant"))
    return "invalid device code"
  if (state.preset.name === "github" && error === "invalid_grant") return "incorrect_device_code"
  return error
}

/** A poll with a device code (RFC 8628 section 3.5): the token once approved, or why not yet (or never). */
const devicePoll = (state: State, res: ServerResponse, form: Record<string, string>, now: number) => {
  const device = [...state.devices.values()].find((each) => each.deviceCode === form.device_code)
  const refuse = (error: string, extra: Readonly<Record<string, unknown>> = {}) =>
    sendError(state, res, devicePollStatus(state, error), deviceErrorName(state, error), extra)
  if (device === undefined || device.status === "used") return refuse("invalid_grant")
  // Twitch's poll repeats the scopes, in `scopes` (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#device-code-grant-flow).
  if (state.preset.settings.deviceScopeParameter === "scopes" && form.scopes === undefined)
    return send(res, 400, { status: 400, message: "missing scopes" })
  device.polls++
  if (device.status === "expired" || now >= device.expiresAt) {
    device.status = "expired"
    return refuse("expired_token")
  }
  if (device.status === "denied") return refuse("access_denied")
  if (device.status === "pending") {
    const early = device.lastPollAt !== undefined && now - device.lastPollAt < device.intervalMs
    device.lastPollAt = now
    if (!early) return refuse("authorization_pending")
    device.intervalMs += 5000
    // GitHub's slow_down names the new interval, in seconds
    // (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#error-codes-for-the-device-flow).
    return refuse("slow_down", state.preset.name === "github" ? { interval: device.intervalMs / 1000 } : {})
  }
  device.status = "used"
  return issueTokens(state, token("grant"), true, device.scope)
}

/**
 * `POST /token` (and Figma's `POST /refresh`): every grant the preset offers,
 * in its answer shape. A preset with a refresh endpoint refreshes only there.
 */
const tokenEndpoint = async (
  state: State,
  req: IncomingMessage,
  res: ServerResponse,
  form: Record<string, string>,
  at: "token" | "refresh" = "token"
) => {
  const fault = state.faults.shift()
  if (fault !== undefined) {
    if ("status" in fault) return send(res, fault.status, {})
    return sendError(state, res, 400, fault.error)
  }
  if (!authenticated(state, req, form)) return sendError(state, res, 401, "invalid_client")
  const accept = String(req.headers.accept ?? "")
  const asForm =
    state.preset.answer.body === "form" && (state.options.ignoreAccept === true || !accept.includes("json"))
  const answer = (body: Record<string, unknown> | undefined, error = "invalid_grant") => {
    if (body === undefined) return sendError(state, res, 400, error)
    send(res, 200, body, asForm)
    return 200
  }
  const refreshAtItsOwn = state.preset.settings.refreshEndpoint !== undefined
  if ((at === "refresh") !== (refreshAtItsOwn && form.grant_type === "refresh_token"))
    return sendError(state, res, 400, "unsupported_grant_type")
  switch (form.grant_type) {
    case DEVICE_GRANT: {
      const polled = devicePoll(state, res, form, Date.now())
      return typeof polled === "number" ? polled : answer(polled)
    }
    case "authorization_code": {
      const code = state.codes.get(form.code ?? "")
      state.codes.delete(form.code ?? "")
      const verifier = createHash("sha256")
        .update(form.code_verifier ?? "")
        .digest("base64url")
      return answer(code === undefined || code.challenge !== verifier ? undefined : codeAnswer(state, code, form))
    }
    case "refresh_token":
      return answer(refresh(state, form, Date.now()))
    case "client_credentials":
      if (!state.preset.grants.includes("client_credentials"))
        return sendError(state, res, 400, "unsupported_grant_type")
      return answer(issueTokens(state, token("app"), false, form.scope ?? ""))
    default:
      return sendError(state, res, 400, "unsupported_grant_type")
  }
}

/** `POST /revoke` (RFC 7009): a token, or its whole grant where the preset says revoking means that. */
const revokeEndpoint = (state: State, req: IncomingMessage, res: ServerResponse, form: Record<string, string>) => {
  if (!authenticated(state, req, form)) return sendError(state, res, 401, "invalid_client")
  // Notion's revocation takes JSON and its version header (https://developers.notion.com/reference/revoke-token).
  const wanted = state.preset.settings.revocationRequest
  const json = String(req.headers["content-type"] ?? "").includes("json")
  const headersMissing = Object.entries(wanted?.headers ?? {}).some(
    ([name, value]) => req.headers[name.toLowerCase()] !== value
  )
  if ((wanted?.body === "json") !== json || headersMissing) {
    return send(res, 400, { object: "error", status: 400, code: "validation_error", message: "Invalid request body" })
  }
  const value = form.token ?? ""
  state.revoked.add(value)
  // A refresh token always takes its grant along (RFC 7009 section 2.1); an access token only where revoking
  // means the whole grant (Google, Discord, Zoom).
  const grant =
    state.refreshTokens.get(value)?.grant ??
    (state.preset.revocation === "grant" ? state.accessGrants.get(value) : undefined)
  if (grant !== undefined) state.revokedGrants.add(grant)
  send(res, 200, state.preset.answer.errors === "ok_false" ? { ok: true, revoked: true } : {})
  return 200
}

/** `GET /authorize` and `GET /install`: the user (or admin) consents at once; back to `redirect_uri`. */
const consent = (state: State, url: URL, res: ServerResponse, install: boolean): number => {
  const query = url.searchParams
  const back = new URL(query.get("redirect_uri") ?? "http://127.0.0.1/")
  back.searchParams.set("state", query.get("state") ?? "")
  const tenantFrom = state.preset.settings.installations?.tenantIdFrom
  const separator = state.preset.settings.scopeSeparator ?? " "
  if (install && tenantFrom !== undefined && "callback" in tenantFrom) {
    // GitHub App installations and Entra admin consent come back with the tenant and no code.
    back.searchParams.set(tenantFrom.callback, state.tenantId)
    if (tenantFrom.callback === "installation_id") back.searchParams.set("setup_action", "install")
  } else if (separator !== " " && (query.get("scope") ?? "").includes(" ")) {
    // Linear reads one unknown scope in "read write".
    back.searchParams.set("error", "invalid_scope")
  } else {
    const code = token("code")
    state.codes.set(code, {
      challenge: query.get("code_challenge") ?? "",
      scope: (query.get("scope") ?? "").split(separator).join(" "),
      userScope: query.get("user_scope") ?? ""
    })
    back.searchParams.set("code", code)
  }
  res.writeHead(302, { location: back.toString() })
  res.end()
  return 302
}

/** Google's device flow allows only some scopes (https://developers.google.com/identity/protocols/oauth2/limited-input-device#allowedscopes). */
const GOOGLE_DEVICE_SCOPES = new Set([
  "openid",
  "email",
  "profile",
  "https://www.googleapis.com/auth/userinfo.email",
  "https://www.googleapis.com/auth/userinfo.profile",
  "https://www.googleapis.com/auth/drive.appdata",
  "https://www.googleapis.com/auth/drive.file",
  "https://www.googleapis.com/auth/youtube",
  "https://www.googleapis.com/auth/youtube.readonly"
])

/** Microsoft's device authorization endpoint is `.../devicecode`; the others' here `/device`. */
const devicePath = (preset: Preset): string => (preset.name === "microsoft" ? "/devicecode" : "/device")

const userCode = (): string => {
  const letters = [...randomBytes(8)].map((byte) => String.fromCharCode(65 + (byte % 26))).join("")
  return `${letters.slice(0, 4)}-${letters.slice(4)}`
}

/**
 * `POST /device` (RFC 8628 section 3.1) as each provider answers it: Google's
 * `verification_url` and allowed scopes, Twitch's `scopes` parameter and its
 * code in the verification link, Microsoft's `message`, GitHub's form body
 * unless `Accept` asks for JSON.
 */
const deviceAuthorization = (state: State, req: IncomingMessage, res: ServerResponse, form: Record<string, string>) => {
  const { preset } = state
  if (!authenticated(state, req, form)) return sendError(state, res, 401, "invalid_client")
  const twitch = preset.settings.deviceScopeParameter === "scopes"
  const scope = (twitch ? form.scopes : form.scope) ?? ""
  if (twitch && form.scopes === undefined) return send(res, 400, { status: 400, message: "missing scopes" })
  if (preset.name === "google" && scope.split(" ").some((each) => each !== "" && !GOOGLE_DEVICE_SCOPES.has(each)))
    return sendError(state, res, 400, "invalid_scope")
  const device: Device = {
    deviceCode: token("dc"),
    userCode: userCode(),
    scope,
    status: "pending",
    intervalMs: (state.options.deviceIntervalSeconds ?? 5) * 1000,
    expiresAt: Date.now() + (twitch ? 1800 : 900) * 1000,
    lastPollAt: undefined,
    polls: 0
  }
  state.devices.set(device.userCode, device)
  const verification = new URL(`${state.url()}/activate`)
  if (twitch) verification.searchParams.set("device-code", device.userCode)
  const accept = String(req.headers.accept ?? "")
  const asForm = preset.answer.body === "form" && (state.options.ignoreAccept === true || !accept.includes("json"))
  send(
    res,
    200,
    {
      device_code: device.deviceCode,
      user_code: device.userCode,
      [preset.name === "google" ? "verification_url" : "verification_uri"]: verification.toString(),
      expires_in: (device.expiresAt - Date.now()) / 1000,
      interval: device.intervalMs / 1000,
      ...(preset.name === "microsoft" ? { message: `Open ${verification} and enter the code ${device.userCode}.` } : {})
    },
    asForm
  )
  return 200
}

/**
 * `GET /activate`: the user enters the code (`user_code`, or Twitch's
 * `device-code` already in the link) and approves, or denies with `decision=deny`.
 */
const activate = (state: State, url: URL, res: ServerResponse): number => {
  const code = (url.searchParams.get("user_code") ?? url.searchParams.get("device-code") ?? "").toUpperCase()
  const device = state.devices.get(code)
  const status = device === undefined || device.status !== "pending" ? 404 : 200
  if (device !== undefined && status === 200) {
    device.status = url.searchParams.get("decision") === "deny" ? "denied" : "approved"
  }
  res.writeHead(status, { "content-type": "text/html; charset=utf-8" })
  res.end(status === 200 ? `<p>Device ${device?.status}</p>` : "<p>Unknown or used code</p>")
  return status
}

/** `POST /app/installations/{id}/access_tokens`: the GitHub App's JWT verified, then an installation token. */
const installationToken = async (state: State, req: IncomingMessage, res: ServerResponse, id: string) => {
  const app = state.options.app
  const jwt = (req.headers.authorization ?? "").replace(/^Bearer /, "")
  const refuse = (message: string) => send(res, 401, { message })
  if (app === undefined) return refuse("This provider has no GitHub App")
  try {
    const key = await importSPKI(app.publicKey, "RS256")
    const { payload } = await jwtVerify(jwt, key, { issuer: app.appId, algorithms: ["RS256"] })
    const now = Math.floor(Date.now() / 1000)
    if (payload.exp === undefined || payload.iat === undefined)
      return refuse("'Expiration time' claim ('exp') is missing")
    if (payload.exp - now > 600) return refuse("'Expiration time' claim ('exp') is too far in the future")
    if (payload.iat > now + 5)
      return refuse("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
  } catch {
    return refuse("A JSON web token could not be decoded")
  }
  if (id !== state.tenantId) return send(res, 404, { message: "Not Found" })
  const access = token("ghs")
  state.accessTokens.push(access)
  const expiresAt = new Date(Date.now() + (state.options.lifetimeSeconds ?? 3600) * 1000).toISOString()
  send(res, 201, { token: access, expires_at: expiresAt.replace(/\.\d+Z$/, "Z"), permissions: { contents: "read" } })
  return 201
}

/** The `oidc` preset's discovery document. */
const discovery = (state: State, res: ServerResponse): number => {
  const base = state.url()
  send(res, 200, {
    issuer: base,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    revocation_endpoint: `${base}/revoke`,
    token_endpoint_auth_methods_supported: [state.preset.settings.tokenEndpointAuthMethod]
  })
  return 200
}

const route = async (state: State, req: IncomingMessage, res: ServerResponse): Promise<number> => {
  const url = new URL(req.url ?? "/", state.url())
  const form = req.method === "POST" ? await readForm(req) : {}
  const seen: QuirkRequest = { method: req.method ?? "GET", path: url.pathname, headers: req.headers, form, status: 0 }
  state.requests.push(seen)
  const installation = /^\/app\/installations\/([^/]+)\/access_tokens$/.exec(url.pathname)
  // A tenant's own token endpoint (Entra's): only the installed tenant is known.
  const tenant = /^\/tenants\/([^/]+)\/token$/.exec(url.pathname)
  let status: number
  if (req.method === "POST" && url.pathname === "/token") status = await tokenEndpoint(state, req, res, form)
  else if (req.method === "POST" && tenant !== null)
    status =
      decodeURIComponent(tenant[1] ?? "") === state.tenantId
        ? await tokenEndpoint(state, req, res, form)
        : sendError(state, res, 400, "invalid_request")
  else if (req.method === "POST" && url.pathname === "/revoke") status = revokeEndpoint(state, req, res, form)
  else if (req.method === "POST" && url.pathname === "/refresh" && state.preset.settings.refreshEndpoint !== undefined)
    status = await tokenEndpoint(state, req, res, form, "refresh")
  else if (
    req.method === "POST" &&
    url.pathname === devicePath(state.preset) &&
    state.preset.grants.includes("device_code")
  )
    status = deviceAuthorization(state, req, res, form)
  else if (url.pathname === "/activate") status = activate(state, url, res)
  else if (req.method === "POST" && installation !== null)
    status = await installationToken(state, req, res, decodeURIComponent(installation[1] ?? ""))
  else if (url.pathname === "/authorize") status = consent(state, url, res, false)
  else if (url.pathname.startsWith("/install")) status = consent(state, url, res, true)
  else if (url.pathname === "/.well-known/openid-configuration") status = discovery(state, res)
  else {
    send(res, 404, { error: "not_found" })
    status = 404
  }
  seen.status = status
  return status
}

/** The connector fields that point the preset's endpoints at the provider. */
const connectorFields = (state: State): Record<string, unknown> => {
  const { preset } = state
  const base = state.url()
  const settings = preset.settings
  const installs = settings.installations
  return {
    provider: preset.name,
    clientId: state.clientId,
    clientSecret: state.clientSecret,
    ...(preset.discovery === true
      ? { issuer: base }
      : {
          tokenEndpoint: `${base}/token`,
          authorizationEndpoint: `${base}/authorize`,
          ...(settings.revocationEndpoint === undefined ? {} : { revocationEndpoint: `${base}/revoke` }),
          ...(settings.deviceAuthorizationEndpoint === undefined
            ? {}
            : { deviceAuthorizationEndpoint: `${base}${devicePath(preset)}` }),
          ...(settings.refreshEndpoint === undefined ? {} : { refreshEndpoint: `${base}/refresh` })
        }),
    ...(settings.appTokens === undefined
      ? {}
      : {
          appTokens: {
            tokenEndpoint: `${base}/app/installations/{tenantId}/access_tokens`,
            ...(state.options.app === undefined ? {} : { appId: state.options.app.appId })
          }
        }),
    ...(installs === undefined
      ? {}
      : {
          installations: {
            authorizationEndpoint: `${base}/install`,
            ...(installs.tokenEndpoint === undefined ? {} : { tokenEndpoint: `${base}/tenants/{tenantId}/token` })
          }
        })
  }
}

/**
 * Starts a quirk provider in the mode of a preset.
 *
 * @since 0.2.0
 * @category constructors
 */
export const startQuirkProvider = async (options: QuirkProviderOptions): Promise<QuirkProvider> => {
  const named = typeof options.preset === "string" ? findPreset(options.preset) : options.preset
  if (named === undefined) throw new Error(`no preset named ${JSON.stringify(options.preset)}`)
  const preset: Preset = { ...named, answer: { ...named.answer, ...options.answer } }
  let base = ""
  const state: State = {
    preset,
    options,
    clientId: options.clientId ?? `${preset.name}-client`,
    clientSecret: options.clientSecret ?? `${preset.name}-secret-${randomBytes(6).toString("hex")}`,
    tenantId: options.tenantId ?? (preset.settings.appTokens === undefined ? "T0001" : "4242"),
    url: () => base,
    requests: [],
    faults: [],
    codes: new Map(),
    refreshTokens: new Map(),
    accessTokens: [],
    accessGrants: new Map(),
    revoked: new Set(),
    revokedGrants: new Set(),
    devices: new Map()
  }
  const server: Server = createServer((req, res) => {
    route(state, req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { error: "server_error" })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return quirkProviderOf(state, server)
}

const quirkProviderOf = (state: State, server: Server): QuirkProvider => ({
  url: state.url(),
  preset: state.preset,
  clientId: state.clientId,
  clientSecret: state.clientSecret,
  tenantId: state.tenantId,
  connector: () => connectorFields(state),
  requests: state.requests,
  tokenRequests: (grantType) =>
    state.requests.filter(
      (request) => /^(\/tenants\/[^/]+)?\/(token|refresh)$/.test(request.path) && request.form.grant_type === grantType
    ),
  revoked: state.revoked,
  accessTokens: state.accessTokens,
  fail: (fault) => {
    state.faults.push(fault)
  },
  expireDevice: (code) => {
    const device = state.devices.get(code)
    if (device !== undefined) device.status = "expired"
  },
  devices: state.devices,
  close: () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
})
