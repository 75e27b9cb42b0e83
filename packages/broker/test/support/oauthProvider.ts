/**
 * A real OAuth 2.0 authorization server for tests: `oidc-provider` running in process on 127.0.0.1.
 *
 * What it offers:
 * - client_credentials with resource indicators (RFC 8707) under `https://api.test/` (opaque tokens, so
 *   introspection works), refresh tokens with rotation, revocation (RFC 7009), introspection (RFC 7662),
 *   rich authorization requests (RFC 9396) and the authorization code flow through `devInteractions`.
 * - The device authorization grant (RFC 8628), with helpers that play the user at the verification page.
 * - Two grant types that oidc-provider does not ship: JWT bearer (RFC 7523) and token exchange (RFC 8693).
 * - Counters of token-endpoint requests by `grant_type`, user refresh tokens seeded without a browser, and
 *   an `introspect` helper.
 *
 * The known scopes are `openid offline_access api:read api:write api:admin`; the test clients may request all
 * but `api:admin`, which therefore gives `invalid_scope`.
 */
import { randomBytes } from "node:crypto"
import { createServer, type RequestListener, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  jwtVerify,
  type KeyLike
} from "jose"
import Provider, {
  type Adapter,
  type AdapterPayload,
  type ClientMetadata,
  type Configuration,
  errors,
  type KoaContextWithOIDC
} from "oidc-provider"

export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

export const DEFAULT_RESOURCE_PREFIX = "https://api.test/"
export const DEFAULT_RESOURCE_SCOPES: ReadonlyArray<string> = ["api:read", "api:write"]
/** Known to the server but not allowed for the test clients: requesting it gives `invalid_scope`. */
export const DISALLOWED_SCOPE = "api:admin"
export const AUTHORIZATION_DETAILS_TYPES: ReadonlyArray<string> = ["account_access", "payment_initiation"]

const OIDC_SCOPES: ReadonlyArray<string> = ["openid", "offline_access"]

export interface JwtBearerOptions {
  /** The key (or key set) that verifies assertions. */
  readonly key: JSONWebKeySet | KeyLike
  /** Accepted `iss` values; when absent any issuer is accepted (it must still be present). */
  readonly issuers?: ReadonlyArray<string>
}

export interface OAuthProviderOptions {
  /** Rotate refresh tokens on every use (default true). */
  readonly rotateRefreshToken?: boolean
  /** Seconds (default 60). */
  readonly accessTokenTtl?: number
  /** Seconds (default 60). */
  readonly clientCredentialsTtl?: number
  /** Seconds (default one day). Grants live as long. */
  readonly refreshTokenTtl?: number
  /** Redirect URIs of the test clients (default `http://127.0.0.1/callback`). */
  readonly redirectUris?: ReadonlyArray<string>
  /** Resources accepted are absolute URIs under this prefix (default `https://api.test/`). */
  readonly resourcePrefix?: string
  /** Scopes every accepted resource offers (default `api:read api:write`). */
  readonly resourceScopes?: ReadonlyArray<string>
  /** PKCE required on the authorization code flow (default true, as oidc-provider does). */
  readonly pkceRequired?: boolean
  /** Keys for the JWT bearer grant; without them every assertion is refused with `invalid_grant`. */
  readonly jwtBearer?: JwtBearerOptions
  /**
   * The `interval` (seconds) the device authorization endpoint announces; by default it announces none,
   * as oidc-provider does, so clients poll every 5 seconds.
   */
  readonly deviceInterval?: number
  /**
   * Acts like a provider whose install flow adds its own members: `tokenResponse` merges members
   * into successful authorization-code token responses (Slack's `team`); `redirectParams` adds
   * query parameters to the redirect back to the client (GitHub's `installation_id`).
   */
  readonly installQuirks?: {
    readonly tokenResponse?: Readonly<Record<string, unknown>>
    readonly redirectParams?: Readonly<Record<string, string>>
  }
}

export type ClientAuthMethod = "client_secret_basic" | "client_secret_post"

export interface OAuthTestClient {
  readonly clientId: string
  readonly clientSecret: string
  readonly authMethod: ClientAuthMethod
}

export interface TokenRequestRecord {
  /** The `grant_type` sent, or `"(none)"` when the body carried none. */
  readonly grantType: string
  readonly status: number
  /** The `resource` parameters sent (RFC 8707). */
  readonly resources: ReadonlyArray<string>
}

export interface TokenRequestCounters {
  /** POSTs to the token endpoint since the start or the last `reset()`. */
  readonly total: number
  readonly byGrantType: Readonly<Record<string, number>>
  readonly log: ReadonlyArray<TokenRequestRecord>
  count(grantType: string): number
  reset(): void
}

export interface IntrospectionResponse {
  readonly active: boolean
  readonly aud?: string | ReadonlyArray<string>
  readonly scope?: string
  readonly client_id?: string
  readonly sub?: string
  readonly exp?: number
  readonly iat?: number
  readonly token_type?: string
  readonly [claim: string]: unknown
}

export interface AuthorizationDetail {
  readonly type: string
  readonly [field: string]: unknown
}

export interface SeedUserGrantInput {
  readonly accountId: string
  /** Space-separated, e.g. `"openid offline_access api:read"`. */
  readonly scope: string
  /** A resource under the resource prefix; the scope's resource scopes are granted for it. */
  readonly resource?: string
  /** Default `broker`. */
  readonly clientId?: string
  /** Stored on the refresh token and returned as `authorization_details` on refresh. */
  readonly authorizationDetails?: ReadonlyArray<AuthorizationDetail>
}

export interface SeededUserGrant {
  readonly refreshToken: string
  readonly grantId: string
}

export interface OAuthProviderHarness {
  readonly issuer: string
  readonly tokenEndpoint: string
  readonly revocationEndpoint: string
  readonly introspectionEndpoint: string
  readonly authorizationEndpoint: string
  /** The device authorization endpoint (RFC 8628 section 3.1). */
  readonly deviceAuthorizationEndpoint: string
  readonly jwksUri: string
  /** `broker` authenticates with client_secret_basic, `brokerPost` with client_secret_post. */
  readonly clients: { readonly broker: OAuthTestClient; readonly brokerPost: OAuthTestClient }
  readonly resourcePrefix: string
  readonly resourceScopes: ReadonlyArray<string>
  readonly provider: Provider
  readonly tokenRequests: TokenRequestCounters
  /** Grants revoked so far (refresh token reuse, revocation of a refresh token). */
  readonly revokedGrantIds: ReadonlyArray<string>
  /** Errors that made the server answer `server_error`: a test can assert there are none. */
  readonly serverErrors: ReadonlyArray<Error>
  /** A user grant and its refresh token, as if the authorization code flow had happened. */
  seedUserGrant(input: SeedUserGrantInput): Promise<SeededUserGrant>
  seedUserRefreshToken(input: SeedUserGrantInput): Promise<string>
  grantExists(grantId: string): Promise<boolean>
  /** Introspects over HTTP as the `broker` client. */
  introspect(token: string): Promise<IntrospectionResponse>
  /**
   * Plays the user of the authorization code flow over plain HTTP with `devInteractions`: opens the
   * authorization URL, signs in as `accountId`, consents (or aborts when `deny`), and returns the URL the
   * server finally redirects to outside itself (the client's redirect URI with `code` or `error`).
   */
  completeAuthorization(authorizationUrl: string, user: CompleteAuthorizationInput): Promise<URL>
  /**
   * Plays the user of a device authorization over plain HTTP: opens the verification page
   * (`verification_uri`, or `verification_uri_complete`), enters the user code when asked, confirms it,
   * signs in as `accountId` and consents. Resolves once the server says the sign-in succeeded.
   */
  completeDeviceAuthorization(verificationUrl: string, user: DeviceAuthorizationInput): Promise<void>
  /**
   * As {@link completeDeviceAuthorization}, but the user aborts at the consent step: the device code is
   * then answered `access_denied`.
   */
  denyDeviceAuthorization(verificationUrl: string, user: DeviceAuthorizationInput): Promise<void>
  close(): Promise<void>
}

export interface DeviceAuthorizationInput {
  readonly accountId: string
  /** The user code the device showed. */
  readonly userCode: string
}

export interface CompleteAuthorizationInput {
  readonly accountId: string
  /** Abort at the consent step: the client gets `error=access_denied`. */
  readonly deny?: boolean
}

/** `Authorization` header value for client_secret_basic (RFC 6749 section 2.3.1 form-encodes both parts). */
export const basicAuthorization = (clientId: string, clientSecret: string): string =>
  `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString("base64")}`

const formEncode = (value: string): string => encodeURIComponent(value).replace(/%20/g, "+")

// ---------------------------------------------------------------------------------------------------------------
// Storage: one in-memory store per server, so servers never share or evict each other's tokens.
// ---------------------------------------------------------------------------------------------------------------

const GRANTABLE = new Set([
  "AccessToken",
  "AuthorizationCode",
  "RefreshToken",
  "DeviceCode",
  "BackchannelAuthenticationRequest"
])

const createMemoryAdapterFactory = (): ((model: string) => Adapter) => {
  const entries = new Map<string, { payload: AdapterPayload; expiresAt: number | undefined }>()
  const grantIndex = new Map<string, Set<string>>()
  const sessionUids = new Map<string, string>()
  const userCodes = new Map<string, string>()

  const read = (key: string): AdapterPayload | undefined => {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry.payload
  }

  return (model) => {
    const keyFor = (id: string) => `${model}:${id}`
    const find = async (id: string) => {
      const payload = read(keyFor(id))
      return payload === undefined ? undefined : { ...payload }
    }
    return {
      upsert: async (id, payload, expiresIn) => {
        const key = keyFor(id)
        if (model === "Session" && typeof payload.uid === "string") sessionUids.set(payload.uid, id)
        if (typeof payload.userCode === "string") userCodes.set(payload.userCode, id)
        if (GRANTABLE.has(model) && typeof payload.grantId === "string") {
          const keys = grantIndex.get(payload.grantId) ?? new Set<string>()
          keys.add(key)
          grantIndex.set(payload.grantId, keys)
        }
        entries.set(key, {
          payload: { ...payload },
          expiresAt: expiresIn > 0 ? Date.now() + expiresIn * 1000 : undefined
        })
      },
      find,
      findByUid: async (uid) => {
        const id = sessionUids.get(uid)
        return id === undefined ? undefined : find(id)
      },
      findByUserCode: async (userCode) => {
        const id = userCodes.get(userCode)
        return id === undefined ? undefined : find(id)
      },
      consume: async (id) => {
        const payload = read(keyFor(id))
        if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000)
      },
      destroy: async (id) => {
        entries.delete(keyFor(id))
      },
      revokeByGrantId: async (grantId) => {
        for (const key of grantIndex.get(grantId) ?? []) entries.delete(key)
        grantIndex.delete(grantId)
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration pieces that @types/oidc-provider 8.8 does not describe.
// ---------------------------------------------------------------------------------------------------------------

/** oidc-provider's token instances carry `rar` (RFC 9396 details); the typings leave it out. */
interface WithRar {
  readonly rar?: ReadonlyArray<AuthorizationDetail> | undefined
}

interface RichAuthorizationRequestsFeature {
  readonly enabled: boolean
  readonly ack: string
  readonly types: Record<string, { validate(ctx: KoaContextWithOIDC, detail: AuthorizationDetail): void }>
  rarForAuthorizationCode(ctx: KoaContextWithOIDC): ReadonlyArray<AuthorizationDetail> | undefined
  rarForCodeResponse(ctx: KoaContextWithOIDC): ReadonlyArray<AuthorizationDetail> | undefined
  rarForRefreshTokenResponse(ctx: KoaContextWithOIDC): ReadonlyArray<AuthorizationDetail> | undefined
  rarForIntrospectionResponse(ctx: KoaContextWithOIDC, token: WithRar): ReadonlyArray<AuthorizationDetail> | undefined
}

interface HarnessConfiguration extends Configuration {
  features: NonNullable<Configuration["features"]> & {
    readonly richAuthorizationRequests: RichAuthorizationRequestsFeature
  }
}

/** The RFC 9396 details requested at the authorization endpoint, granted as asked (a permissive server). */
const requestedAuthorizationDetails = (ctx: KoaContextWithOIDC): ReadonlyArray<AuthorizationDetail> | undefined => {
  const raw = ctx.oidc.params?.authorization_details
  if (typeof raw !== "string") return undefined
  const parsed: unknown = JSON.parse(raw)
  return Array.isArray(parsed) && parsed.length > 0 ? (parsed as ReadonlyArray<AuthorizationDetail>) : undefined
}

/** `ReplayDetection.unique` is static in oidc-provider; the typings declare it on instances. */
interface ReplayDetectionStatic {
  unique(iss: string, jti: string, exp: number): Promise<boolean>
}

// Signing keys are generated once per process: a fresh RSA key per server costs time and buys nothing.
let signingKeys: Promise<JSONWebKeySet> | undefined
const getSigningKeys = (): Promise<JSONWebKeySet> => {
  signingKeys ??= generateKeyPair("RS256", { modulusLength: 2048, extractable: true }).then(async ({ privateKey }) => {
    const jwk: JWK = await exportJWK(privateKey)
    return { keys: [{ ...jwk, kid: "test-rs256", alg: "RS256", use: "sig" }] }
  })
  return signingKeys
}

const decodeHtml = (value: string): string =>
  value
    .replace(/&#x2F;/gi, "/")
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")

/** One request of the user's browser: a GET, or a POST of `form`. */
type PageRequest = { readonly url: URL; readonly form?: URLSearchParams }

/**
 * Runs `make` without oidc-provider's warning, printed at every start, that
 * `devInteractions` is for development only: this harness is exactly that,
 * and the warning would be the only noise of a test run.
 */
const withoutDevInteractionsWarning = <A>(make: () => A): A => {
  const warn = console.warn
  console.warn = (...args: Array<unknown>) => {
    if (typeof args[0] === "string" && args[0].includes("feature devInteractions is enabled")) return
    warn(...args)
  }
  try {
    return make()
  } finally {
    console.warn = warn
  }
}

/** Just enough of a browser's cookie store for the authorization flow: name, path, expiry. */
class CookieJar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>()

  store(setCookies: ReadonlyArray<string>): void {
    for (const setCookie of setCookies) {
      const [pair = "", ...attributes] = setCookie.split(";").map((part) => part.trim())
      const separator = pair.indexOf("=")
      if (separator <= 0) continue
      const name = pair.slice(0, separator)
      const value = pair.slice(separator + 1)
      let path = "/"
      let expired = false
      for (const attribute of attributes) {
        const [key = "", attributeValue = ""] = attribute.split("=", 2)
        const lower = key.toLowerCase()
        if (lower === "path") path = attributeValue
        else if (lower === "expires" && Date.parse(attributeValue) <= Date.now()) expired = true
        else if (lower === "max-age" && Number(attributeValue) <= 0) expired = true
      }
      const key = `${name};${path}`
      if (expired) this.#cookies.delete(key)
      else this.#cookies.set(key, { name, value, path })
    }
  }

  header(url: URL): string | undefined {
    const matching = [...this.#cookies.values()].filter(
      ({ path }) => url.pathname === path || url.pathname.startsWith(path.endsWith("/") ? path : `${path}/`)
    )
    return matching.length === 0 ? undefined : matching.map(({ name, value }) => `${name}=${value}`).join("; ")
  }
}

const listen = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve((server.address() as AddressInfo).port)
    })
  })

const stringParam = (ctx: KoaContextWithOIDC, name: string): string | undefined => {
  const value = ctx.oidc.params?.[name]
  return typeof value === "string" && value.length > 0 ? value : undefined
}

const splitScope = (scope: string | undefined): Array<string> =>
  scope === undefined ? [] : [...new Set(scope.split(" ").filter((s) => s.length > 0))]

export const startOAuthProvider = async (options: OAuthProviderOptions = {}): Promise<OAuthProviderHarness> => {
  const accessTokenTtl = options.accessTokenTtl ?? 60
  const clientCredentialsTtl = options.clientCredentialsTtl ?? 60
  const refreshTokenTtl = options.refreshTokenTtl ?? 24 * 60 * 60
  const resourcePrefix = options.resourcePrefix ?? DEFAULT_RESOURCE_PREFIX
  const resourceScopes = options.resourceScopes ?? DEFAULT_RESOURCE_SCOPES
  const redirectUris = [...(options.redirectUris ?? ["http://127.0.0.1/callback"])]
  const pkceRequired = options.pkceRequired ?? true

  let handler: RequestListener | undefined
  const server = createServer((req, res) => {
    if (handler === undefined) {
      res.statusCode = 503
      res.end()
      return
    }
    handler(req, res)
  })
  const port = await listen(server)
  const issuer = `http://127.0.0.1:${port}`
  const tokenEndpoint = `${issuer}/token`

  const allowedScope = [...OIDC_SCOPES, ...resourceScopes].join(" ")
  const grantTypes = [
    "client_credentials",
    "refresh_token",
    "authorization_code",
    JWT_BEARER_GRANT,
    TOKEN_EXCHANGE_GRANT,
    DEVICE_CODE_GRANT
  ]
  const clients = {
    broker: { clientId: "broker", clientSecret: "broker-secret", authMethod: "client_secret_basic" },
    brokerPost: { clientId: "broker-post", clientSecret: "broker-post-secret", authMethod: "client_secret_post" }
  } as const satisfies Record<string, OAuthTestClient>
  const clientMetadata = (client: OAuthTestClient): ClientMetadata => ({
    client_id: client.clientId,
    client_secret: client.clientSecret,
    token_endpoint_auth_method: client.authMethod,
    grant_types: grantTypes,
    response_types: ["code"],
    redirect_uris: redirectUris,
    scope: allowedScope,
    authorization_details_types: [...AUTHORIZATION_DETAILS_TYPES]
  })

  const isAcceptedResource = (resource: string): boolean => {
    try {
      return new URL(resource).href.startsWith(resourcePrefix) && !resource.includes("#")
    } catch {
      return false
    }
  }

  const configuration: HarnessConfiguration = {
    adapter: createMemoryAdapterFactory(),
    jwks: await getSigningKeys(),
    cookies: { keys: [randomBytes(32).toString("hex")] },
    clients: [clientMetadata(clients.broker), clientMetadata(clients.brokerPost)],
    scopes: [...OIDC_SCOPES, ...resourceScopes, DISALLOWED_SCOPE],
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    rotateRefreshToken: options.rotateRefreshToken ?? true,
    pkce: { required: () => pkceRequired },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: clientCredentialsTtl,
      RefreshToken: refreshTokenTtl,
      Grant: refreshTokenTtl,
      AuthorizationCode: 60,
      DeviceCode: 10 * 60,
      IdToken: 60 * 60,
      Interaction: 60 * 60,
      Session: 24 * 60 * 60
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: {
        enabled: true,
        // A page of our own: oidc-provider's default prints a notice asking to change it, in every test run.
        userCodeInputSource: (ctx, form, _out, err) => {
          const message =
            err === undefined
              ? "Enter the code displayed on your device"
              : err.name === "AbortedError"
                ? "The Sign-in request was interrupted"
                : "The code you entered is incorrect. Try again"
          ctx.body = `<!DOCTYPE html><html><head><title>Sign-in</title></head><body><p>${message}</p>${form}<button type="submit" form="op.deviceInputForm">Continue</button></body></html>`
        },
        userCodeConfirmSource: (ctx, form, _client, _deviceInfo, userCode) => {
          ctx.body = `<!DOCTYPE html><html><head><title>Confirm Device</title></head><body><p>The code on your device: <code>${userCode}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button><button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button></body></html>`
        },
        successSource: (ctx) => {
          ctx.body =
            "<!DOCTYPE html><html><head><title>Sign-in Success</title></head><body><h1>Sign-in Success</h1></body></html>"
        }
      },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: () => true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // The typings want a resource back; returning nothing means "no default resource".
        defaultResource: (_ctx, _client, oneOf) => (oneOf?.[0] ?? undefined) as string,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (!isAcceptedResource(resource)) throw new errors.InvalidTarget()
          return { scope: resourceScopes.join(" "), audience: resource, accessTokenFormat: "opaque" }
        }
      },
      richAuthorizationRequests: {
        enabled: true,
        ack: "experimental-01",
        types: Object.fromEntries(AUTHORIZATION_DETAILS_TYPES.map((type) => [type, { validate: () => {} }])),
        rarForAuthorizationCode: requestedAuthorizationDetails,
        rarForCodeResponse: (ctx) => (ctx.oidc.entities.AuthorizationCode as WithRar | undefined)?.rar,
        rarForRefreshTokenResponse: (ctx) => (ctx.oidc.entities.RefreshToken as WithRar | undefined)?.rar,
        rarForIntrospectionResponse: (_ctx, token) => token.rar
      }
    }
  }

  const provider = withoutDevInteractionsWarning(() => new Provider(issuer, configuration))

  // --- counters and events ---------------------------------------------------------------------------------------
  const log: Array<TokenRequestRecord> = []
  const revokedGrantIds: Array<string> = []
  const serverErrors: Array<Error> = []
  const tokenPath = new URL(tokenEndpoint).pathname
  const deviceAuthorizationEndpoint = `${issuer}/device/auth`
  const deviceInterval = options.deviceInterval
  if (deviceInterval !== undefined) {
    const devicePath = new URL(deviceAuthorizationEndpoint).pathname
    provider.use(async (ctx, next) => {
      await next()
      if (ctx.method === "POST" && ctx.path === devicePath && ctx.status === 200 && typeof ctx.body === "object") {
        ctx.body = { ...(ctx.body as Record<string, unknown>), interval: deviceInterval }
      }
    })
  }
  const quirks = options.installQuirks
  if (quirks !== undefined) {
    provider.use(async (ctx, next) => {
      await next()
      const grantType = (ctx as unknown as Partial<KoaContextWithOIDC>).oidc?.params?.grant_type
      if (
        quirks.tokenResponse !== undefined &&
        ctx.method === "POST" &&
        ctx.path === tokenPath &&
        ctx.status === 200 &&
        grantType === "authorization_code" &&
        typeof ctx.body === "object" &&
        ctx.body !== null
      ) {
        ctx.body = { ...(ctx.body as Record<string, unknown>), ...quirks.tokenResponse }
      }
      const location = ctx.response.get("location")
      if (quirks.redirectParams !== undefined && ctx.status >= 300 && ctx.status < 400 && location.includes("state=")) {
        const target = new URL(location)
        if (target.origin !== new URL(issuer).origin) {
          for (const [name, value] of Object.entries(quirks.redirectParams)) target.searchParams.set(name, value)
          ctx.redirect(target.toString())
        }
      }
    })
  }
  provider.use(async (ctx, next) => {
    await next()
    if (ctx.method !== "POST" || ctx.path !== tokenPath) return
    // ctx.oidc is set by oidc-provider's router; Koa's typing of `use` does not know it.
    const params = (ctx as unknown as Partial<KoaContextWithOIDC>).oidc?.params
    const grantType = params?.grant_type
    const resource: unknown = params?.resource
    log.push({
      grantType: typeof grantType === "string" ? grantType : "(none)",
      status: ctx.status,
      resources: typeof resource === "string" ? [resource] : Array.isArray(resource) ? resource.map(String) : []
    })
  })
  const tokenRequests: TokenRequestCounters = {
    get total() {
      return log.length
    },
    get byGrantType() {
      const counts: Record<string, number> = {}
      for (const { grantType } of log) counts[grantType] = (counts[grantType] ?? 0) + 1
      return counts
    },
    get log() {
      return [...log]
    },
    count: (grantType) => log.filter((record) => record.grantType === grantType).length,
    reset: () => {
      log.length = 0
    }
  }
  provider.on("grant.revoked", (_ctx: KoaContextWithOIDC, grantId: string) => {
    revokedGrantIds.push(grantId)
  })
  provider.on("server_error", (_ctx: KoaContextWithOIDC, error: Error) => {
    serverErrors.push(error)
  })

  // --- token issuing shared by the custom grants ---------------------------------------------------------------
  const authenticatedClient = (ctx: KoaContextWithOIDC) => {
    const client = ctx.oidc.client
    // The token endpoint authenticates the client before any grant handler runs.
    if (client === undefined) throw new errors.InvalidClient("client authentication failed")
    return client
  }

  /** Checks the requested scope against the client, as the client_credentials grant does. */
  const checkClientScope = (ctx: KoaContextWithOIDC, scopes: ReadonlyArray<string>) => {
    const allowed = new Set(splitScope(authenticatedClient(ctx).scope))
    for (const scope of scopes) {
      if (!allowed.has(scope)) throw new errors.InvalidScope("requested scope is not allowed", scope)
    }
  }

  const issueAccessToken = async (
    ctx: KoaContextWithOIDC,
    input: { accountId: string; gty: string; audience: string | undefined; scopes: ReadonlyArray<string> }
  ) => {
    const client = authenticatedClient(ctx)
    const scope = input.audience === undefined ? [] : input.scopes.filter((s) => resourceScopes.includes(s))
    const grant = new provider.Grant({ accountId: input.accountId, clientId: client.clientId })
    if (input.audience !== undefined && scope.length > 0) grant.addResourceScope(input.audience, scope.join(" "))
    const grantId = await grant.save()
    const token = new provider.AccessToken({
      client,
      accountId: input.accountId,
      grantId,
      gty: input.gty,
      scope: scope.join(" "),
      ...(input.audience === undefined ? {} : { aud: input.audience })
    })
    ctx.oidc.entity("AccessToken", token)
    const value = await token.save()
    ctx.body = {
      access_token: value,
      token_type: token.tokenType,
      expires_in: token.expiration,
      scope: token.scope || undefined
    }
  }

  const targetOf = (ctx: KoaContextWithOIDC, ...names: ReadonlyArray<string>): string | undefined => {
    const values = names.map((name) => stringParam(ctx, name)).filter((v): v is string => v !== undefined)
    const [target] = values
    if (target === undefined) return undefined
    if (values.some((value) => value !== target)) {
      throw new errors.InvalidTarget("only a single target may be requested")
    }
    if (!isAcceptedResource(target)) throw new errors.InvalidTarget()
    return target
  }

  // --- JWT bearer (RFC 7523) -----------------------------------------------------------------------------------
  const jwtBearer = options.jwtBearer
  const verificationKey =
    jwtBearer === undefined ? undefined : "keys" in jwtBearer.key ? createLocalJWKSet(jwtBearer.key) : jwtBearer.key
  const replay = provider.ReplayDetection as unknown as ReplayDetectionStatic

  provider.registerGrantType(
    JWT_BEARER_GRANT,
    async (ctx, next) => {
      const assertion = stringParam(ctx, "assertion")
      if (assertion === undefined) throw new errors.InvalidRequest("missing required parameter 'assertion'")
      if (verificationKey === undefined) throw new errors.InvalidGrant("no key is configured for JWT bearer assertions")
      let payload: JWTPayload
      try {
        const verifyOptions = {
          audience: tokenEndpoint,
          clockTolerance: 5,
          requiredClaims: ["iss", "sub", "exp", "jti"]
        }
        payload = (
          typeof verificationKey === "function"
            ? await jwtVerify(assertion, verificationKey, verifyOptions)
            : await jwtVerify(assertion, verificationKey, verifyOptions)
        ).payload
      } catch (cause) {
        throw new errors.InvalidGrant(`invalid assertion: ${cause instanceof Error ? cause.message : String(cause)}`)
      }
      const { iss, sub, jti, exp } = payload
      if (typeof iss !== "string" || typeof sub !== "string" || typeof jti !== "string" || typeof exp !== "number") {
        throw new errors.InvalidGrant("invalid assertion: iss, sub, jti and exp are required")
      }
      if (jwtBearer?.issuers !== undefined && !jwtBearer.issuers.includes(iss)) {
        throw new errors.InvalidGrant("invalid assertion: issuer not trusted")
      }
      if (!(await replay.unique(iss, jti, exp + 5))) throw new errors.InvalidGrant("invalid assertion: jti reused")
      const scopes = splitScope(stringParam(ctx, "scope"))
      checkClientScope(ctx, scopes)
      await issueAccessToken(ctx, { accountId: sub, gty: "jwt_bearer", audience: targetOf(ctx, "resource"), scopes })
      await next()
    },
    ["assertion", "scope", "resource"]
  )

  // --- Token exchange (RFC 8693) -------------------------------------------------------------------------------
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx, next) => {
      const subjectToken = stringParam(ctx, "subject_token")
      if (subjectToken === undefined) throw new errors.InvalidRequest("missing required parameter 'subject_token'")
      if (stringParam(ctx, "subject_token_type") !== ACCESS_TOKEN_TYPE) {
        throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`)
      }
      const requested = stringParam(ctx, "requested_token_type")
      if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
        throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`)
      }
      const subject = await provider.AccessToken.find(subjectToken)
      if (subject === undefined || !subject.isValid) throw new errors.InvalidGrant("subject_token is not valid")
      if (subject.grantId !== undefined && (await provider.Grant.find(subject.grantId)) === undefined) {
        throw new errors.InvalidGrant("subject_token's grant is gone")
      }
      const audience = targetOf(ctx, "audience", "resource")
      if (audience === undefined) throw new errors.InvalidRequest("audience or resource is required")
      const requestedScopes = splitScope(stringParam(ctx, "scope"))
      const subjectScopes = subject.scopes
      for (const scope of requestedScopes) {
        if (!subjectScopes.has(scope)) throw new errors.InvalidScope("scope exceeds the subject token's", scope)
      }
      const scopes = requestedScopes.length > 0 ? requestedScopes : [...subjectScopes]
      await issueAccessToken(ctx, { accountId: subject.accountId, gty: "token_exchange", audience, scopes })
      ctx.body = { ...(ctx.body as Record<string, unknown>), issued_token_type: ACCESS_TOKEN_TYPE }
      await next()
    },
    ["subject_token", "subject_token_type", "requested_token_type", "audience", "resource", "scope"]
  )

  handler = provider.callback()

  // --- helpers -------------------------------------------------------------------------------------------------
  const seedUserGrant = async (input: SeedUserGrantInput): Promise<SeededUserGrant> => {
    const clientId = input.clientId ?? clients.broker.clientId
    const client = await provider.Client.find(clientId)
    if (client === undefined) throw new Error(`unknown client ${clientId}`)
    const scopes = splitScope(input.scope)
    const grant = new provider.Grant({ accountId: input.accountId, clientId })
    const oidcScopes = scopes.filter((s) => OIDC_SCOPES.includes(s))
    if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(" "))
    if (input.resource !== undefined) {
      if (!isAcceptedResource(input.resource)) throw new Error(`resource ${input.resource} is not accepted`)
      const granted = scopes.filter((s) => resourceScopes.includes(s))
      if (granted.length > 0) grant.addResourceScope(input.resource, granted.join(" "))
    }
    const grantId = await grant.save()
    const refreshToken = new provider.RefreshToken({
      client,
      accountId: input.accountId,
      grantId,
      gty: "authorization_code",
      scope: scopes.join(" "),
      expiresWithSession: false,
      ...(input.resource === undefined ? {} : { resource: input.resource }),
      ...(input.authorizationDetails === undefined ? {} : { rar: input.authorizationDetails })
    })
    return { refreshToken: await refreshToken.save(), grantId }
  }

  const introspect = async (token: string): Promise<IntrospectionResponse> => {
    const response = await fetch(`${issuer}/token/introspection`, {
      method: "POST",
      headers: {
        authorization: basicAuthorization(clients.broker.clientId, clients.broker.clientSecret),
        "content-type": "application/x-www-form-urlencoded"
      },
      body: new URLSearchParams({ token })
    })
    if (!response.ok) throw new Error(`introspection failed with HTTP ${response.status}: ${await response.text()}`)
    return (await response.json()) as IntrospectionResponse
  }

  /**
   * The user's browser at this server's `devInteractions` pages: keeps cookies, follows redirects within the
   * server, and on every page with a `prompt` signs in as `accountId` and consents (or aborts at the consent
   * step when `deny`). `leave` answers a redirect out of the server; `finished` may end the walk on a page
   * without a form; `noPrompt` answers a form without a prompt. At most 20 requests.
   */
  const interact = async <A>(
    startUrl: string,
    user: { readonly accountId: string; readonly deny: boolean },
    flow: string,
    on: {
      readonly leave: (next: URL) => A
      readonly finished?: (body: string) => { readonly done: A } | undefined
      readonly noPrompt: (body: string, submitUrl: URL) => PageRequest
    }
  ): Promise<A> => {
    const jar = new CookieJar()
    let request: PageRequest = { url: new URL(startUrl) }
    for (let step = 0; step < 20; step++) {
      const { url, form } = request
      const cookie = jar.header(url)
      const response = await fetch(url, {
        method: form === undefined ? "GET" : "POST",
        redirect: "manual",
        headers: {
          accept: "text/html",
          ...(cookie === undefined ? {} : { cookie }),
          ...(form === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" })
        },
        ...(form === undefined ? {} : { body: form })
      })
      jar.store(response.headers.getSetCookie())
      const body = await response.text()
      const location = response.headers.get("location")
      if (response.status >= 300 && response.status < 400 && location !== null) {
        const next = new URL(location, url)
        if (next.origin !== new URL(issuer).origin) return on.leave(next)
        request = { url: next }
        continue
      }
      const finished = on.finished?.(body)
      if (finished !== undefined) return finished.done
      const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1]
      if (response.status !== 200 || action === undefined) {
        throw new Error(`unexpected answer during ${flow}: HTTP ${response.status} ${body.slice(0, 500)}`)
      }
      const submitUrl = new URL(decodeHtml(action), url)
      const prompt = /name="prompt" value="([^"]+)"/.exec(body)?.[1]
      if (prompt === "consent" && user.deny) {
        request = { url: new URL(`${submitUrl.pathname}/abort`, submitUrl) }
      } else if (prompt === "login") {
        request = { url: submitUrl, form: new URLSearchParams({ prompt, login: user.accountId, password: "any" }) }
      } else if (prompt !== undefined) {
        request = { url: submitUrl, form: new URLSearchParams({ prompt }) }
      } else {
        request = on.noPrompt(body, submitUrl)
      }
    }
    throw new Error(`the ${flow} did not finish within 20 requests`)
  }

  const completeAuthorization = (authorizationUrl: string, user: CompleteAuthorizationInput): Promise<URL> =>
    interact<URL>(authorizationUrl, { accountId: user.accountId, deny: user.deny === true }, "authorization", {
      leave: (next) => next,
      noPrompt: (body) => {
        throw new Error(`unexpected answer during authorization: HTTP 200 ${body.slice(0, 500)}`)
      }
    })

  /** The user at the verification page: enters the code, confirms, signs in, and consents or aborts. */
  const driveDeviceAuthorization = (
    verificationUrl: string,
    user: DeviceAuthorizationInput,
    deny: boolean
  ): Promise<void> =>
    interact<void>(verificationUrl, { accountId: user.accountId, deny }, "device authorization", {
      leave: (next) => {
        throw new Error(`the device flow left the server for ${next}`)
      },
      finished: (body) => {
        if (body.includes("Sign-in Success")) {
          if (deny) throw new Error("the device authorization succeeded although the user aborted")
          return { done: undefined }
        }
        if (body.includes("request was interrupted")) {
          if (!deny) throw new Error("the device authorization was interrupted")
          return { done: undefined }
        }
        return undefined
      },
      // A page of the device flow: the code input, its auto-submitted form, or the confirmation.
      noPrompt: (body, submitUrl) => {
        const fields = new URLSearchParams()
        for (const [, name = "", value = ""] of body.matchAll(
          /<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g
        )) {
          fields.set(name, decodeHtml(value))
        }
        if (!fields.has("user_code")) fields.set("user_code", user.userCode)
        return { url: submitUrl, form: fields }
      }
    })

  const close = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()))
      server.closeAllConnections()
    })

  return {
    issuer,
    tokenEndpoint,
    revocationEndpoint: `${issuer}/token/revocation`,
    introspectionEndpoint: `${issuer}/token/introspection`,
    authorizationEndpoint: `${issuer}/auth`,
    deviceAuthorizationEndpoint,
    jwksUri: `${issuer}/jwks`,
    clients,
    resourcePrefix,
    resourceScopes,
    provider,
    tokenRequests,
    revokedGrantIds,
    serverErrors,
    seedUserGrant,
    seedUserRefreshToken: async (input) => (await seedUserGrant(input)).refreshToken,
    grantExists: async (grantId) => (await provider.Grant.find(grantId)) !== undefined,
    introspect,
    completeAuthorization,
    completeDeviceAuthorization: (verificationUrl, user) => driveDeviceAuthorization(verificationUrl, user, false),
    denyDeviceAuthorization: (verificationUrl, user) => driveDeviceAuthorization(verificationUrl, user, true),
    close
  }
}
