import { createHash, randomBytes } from "node:crypto"
import { exportJWK, generateKeyPair, type KeyLike, SignJWT } from "jose"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import {
  ACCESS_TOKEN_TYPE,
  basicAuthorization,
  DISALLOWED_SCOPE,
  JWT_BEARER_GRANT,
  type OAuthProviderHarness,
  type OAuthTestClient,
  startOAuthProvider,
  TOKEN_EXCHANGE_GRANT
} from "./oauthProvider.js"

const RESOURCE = "https://api.test/a"
const ASSERTION_ISSUER = "https://workload.test"

const base64url = (bytes: Buffer): string => bytes.toString("base64url")

interface TokenAnswer {
  readonly status: number
  readonly body: Record<string, unknown>
}

const post = async (
  url: string,
  client: OAuthTestClient,
  params: Record<string, string>,
  secret: string = client.clientSecret
): Promise<TokenAnswer> => {
  const body = new URLSearchParams(params)
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" }
  if (client.authMethod === "client_secret_basic") {
    headers.authorization = basicAuthorization(client.clientId, secret)
  } else {
    body.set("client_id", client.clientId)
    body.set("client_secret", secret)
  }
  const response = await fetch(url, { method: "POST", headers, body })
  const text = await response.text()
  return { status: response.status, body: text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

const stringField = (answer: TokenAnswer, field: string): string => {
  const value = answer.body[field]
  if (typeof value !== "string") throw new Error(`${field} missing in ${JSON.stringify(answer.body)}`)
  return value
}

describe("oauthProvider test harness", () => {
  let oauth: OAuthProviderHarness
  let assertionKey: KeyLike
  const token = (params: Record<string, string>, client?: OAuthTestClient, secret?: string) =>
    post(oauth.tokenEndpoint, client ?? oauth.clients.broker, params, secret)

  beforeAll(async () => {
    const keyPair = await generateKeyPair("ES256")
    assertionKey = keyPair.privateKey
    const publicJwk = await exportJWK(keyPair.publicKey)
    oauth = await startOAuthProvider({
      jwtBearer: { key: { keys: [{ ...publicJwk, kid: "workload", alg: "ES256" }] }, issuers: [ASSERTION_ISSUER] }
    })
  })

  afterAll(async () => {
    await oauth?.close()
  })

  beforeEach(() => {
    oauth.tokenRequests.reset()
  })

  it("serves on 127.0.0.1 and its discovery document lists the endpoints it reports", async () => {
    expect(new URL(oauth.issuer).hostname).toBe("127.0.0.1")
    const response = await fetch(`${oauth.issuer}/.well-known/openid-configuration`)
    expect(response.status).toBe(200)
    const discovery = (await response.json()) as Record<string, unknown>
    expect(discovery).toMatchObject({
      issuer: oauth.issuer,
      token_endpoint: oauth.tokenEndpoint,
      revocation_endpoint: oauth.revocationEndpoint,
      introspection_endpoint: oauth.introspectionEndpoint,
      authorization_endpoint: oauth.authorizationEndpoint,
      jwks_uri: oauth.jwksUri
    })
    expect(discovery.grant_types_supported).toEqual(
      expect.arrayContaining(["client_credentials", "refresh_token", JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT])
    )
  })

  it("client_credentials with a resource gives an opaque token that introspects as active for that audience", async () => {
    const answer = await token({ grant_type: "client_credentials", resource: RESOURCE, scope: "api:read" })
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ token_type: "Bearer", expires_in: 60, scope: "api:read" })
    const accessToken = stringField(answer, "access_token")
    expect(accessToken.split(".")).toHaveLength(1) // opaque, not a JWT
    const introspection = await oauth.introspect(accessToken)
    expect(introspection).toMatchObject({ active: true, aud: RESOURCE, client_id: "broker", scope: "api:read" })
  })

  it("client_secret_post works for the second client", async () => {
    const answer = await token({ grant_type: "client_credentials", resource: RESOURCE }, oauth.clients.brokerPost)
    expect(answer.status).toBe(200)
    expect((await oauth.introspect(stringField(answer, "access_token"))).active).toBe(true)
  })

  it("an unknown resource is 400 invalid_target", async () => {
    const answer = await token({ grant_type: "client_credentials", resource: "https://elsewhere.test/x" })
    expect(answer.status).toBe(400)
    expect(answer.body.error).toBe("invalid_target")
  })

  it("a disallowed scope is 400 invalid_scope", async () => {
    const answer = await token({ grant_type: "client_credentials", resource: RESOURCE, scope: DISALLOWED_SCOPE })
    expect(answer.status).toBe(400)
    expect(answer.body.error).toBe("invalid_scope")
  })

  it("a bad client secret is 401 invalid_client, with either authentication method", async () => {
    const basic = await token({ grant_type: "client_credentials", resource: RESOURCE }, oauth.clients.broker, "nope")
    expect(basic.status).toBe(401)
    expect(basic.body.error).toBe("invalid_client")
    const viaPost = await token(
      { grant_type: "client_credentials", resource: RESOURCE },
      oauth.clients.brokerPost,
      "nope"
    )
    expect(viaPost.status).toBe(401)
    expect(viaPost.body.error).toBe("invalid_client")
  })

  it("a seeded user refresh token rotates on each refresh; reusing a consumed one revokes the grant", async () => {
    const seeded = await oauth.seedUserGrant({
      accountId: "user-1",
      scope: "openid offline_access api:read",
      resource: RESOURCE
    })
    const first = await token({ grant_type: "refresh_token", refresh_token: seeded.refreshToken })
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ token_type: "Bearer", scope: "api:read", expires_in: 60 })
    expect(typeof first.body.id_token).toBe("string")
    const secondRefreshToken = stringField(first, "refresh_token")
    expect(secondRefreshToken).not.toBe(seeded.refreshToken)
    expect(await oauth.introspect(stringField(first, "access_token"))).toMatchObject({
      active: true,
      aud: RESOURCE,
      sub: "user-1",
      scope: "api:read"
    })

    const second = await token({ grant_type: "refresh_token", refresh_token: secondRefreshToken })
    expect(second.status).toBe(200)
    const thirdRefreshToken = stringField(second, "refresh_token")
    expect(new Set([seeded.refreshToken, secondRefreshToken, thirdRefreshToken]).size).toBe(3)
    const liveAccessToken = stringField(second, "access_token")
    expect((await oauth.introspect(liveAccessToken)).active).toBe(true)

    const reuse = await token({ grant_type: "refresh_token", refresh_token: seeded.refreshToken })
    expect(reuse.status).toBe(400)
    expect(reuse.body.error).toBe("invalid_grant")
    expect(oauth.revokedGrantIds).toContain(seeded.grantId)
    expect(await oauth.grantExists(seeded.grantId)).toBe(false)
    // The whole grant is gone: the newest refresh token and the access token issued with it too.
    const latest = await token({ grant_type: "refresh_token", refresh_token: thirdRefreshToken })
    expect(latest.status).toBe(400)
    expect(latest.body.error).toBe("invalid_grant")
    expect(latest.body.error_description).toBe(reuse.body.error_description)
    expect((await oauth.introspect(liveAccessToken)).active).toBe(false)
  })

  it("a refresh token of another client is invalid_grant", async () => {
    const refreshToken = await oauth.seedUserRefreshToken({ accountId: "user-2", scope: "offline_access api:read" })
    const answer = await token({ grant_type: "refresh_token", refresh_token: refreshToken }, oauth.clients.brokerPost)
    expect(answer.status).toBe(400)
    expect(answer.body.error).toBe("invalid_grant")
  })

  it("returns seeded authorization_details on refresh", async () => {
    const details = [{ type: "account_access", actions: ["read"], locations: [RESOURCE] }]
    const refreshToken = await oauth.seedUserRefreshToken({
      accountId: "user-3",
      scope: "offline_access api:write",
      resource: RESOURCE,
      authorizationDetails: details
    })
    const answer = await token({ grant_type: "refresh_token", refresh_token: refreshToken })
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ scope: "api:write", authorization_details: details })
  })

  it("revoking an access token makes introspection inactive", async () => {
    const issued = await token({ grant_type: "client_credentials", resource: RESOURCE })
    const accessToken = stringField(issued, "access_token")
    expect((await oauth.introspect(accessToken)).active).toBe(true)
    const revoked = await post(oauth.revocationEndpoint, oauth.clients.broker, {
      token: accessToken,
      token_type_hint: "access_token"
    })
    expect(revoked.status).toBe(200)
    expect(await oauth.introspect(accessToken)).toEqual({ active: false })
  })

  it("counts token-endpoint requests by grant type, failures included", async () => {
    await token({ grant_type: "client_credentials", resource: RESOURCE })
    await token({ grant_type: "client_credentials", resource: RESOURCE })
    await token({ grant_type: "client_credentials", resource: RESOURCE }, oauth.clients.broker, "wrong")
    await token({ grant_type: "refresh_token", refresh_token: "unknown" })
    await oauth.introspect("not-a-token") // not the token endpoint: not counted
    expect(oauth.tokenRequests.total).toBe(4)
    expect(oauth.tokenRequests.byGrantType).toEqual({ client_credentials: 3, refresh_token: 1 })
    expect(oauth.tokenRequests.count("client_credentials")).toBe(3)
    expect(oauth.tokenRequests.count("authorization_code")).toBe(0)
    expect(oauth.tokenRequests.log.map((record) => record.status)).toEqual([200, 200, 401, 400])
    oauth.tokenRequests.reset()
    expect(oauth.tokenRequests.total).toBe(0)
  })

  describe("JWT bearer (RFC 7523)", () => {
    const assertion = (claims: { iss?: string; sub?: string; aud?: string; exp?: number; jti?: string }) => {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({ jti: claims.jti ?? crypto.randomUUID() })
        .setProtectedHeader({ alg: "ES256", kid: "workload" })
        .setIssuer(claims.iss ?? ASSERTION_ISSUER)
        .setSubject(claims.sub ?? "service-7")
        .setAudience(claims.aud ?? oauth.tokenEndpoint)
        .setIssuedAt(now)
        .setExpirationTime(claims.exp ?? now + 60)
        .sign(assertionKey)
    }
    const exchange = async (signed: string) =>
      token({ grant_type: JWT_BEARER_GRANT, assertion: signed, resource: RESOURCE, scope: "api:read" })

    it("issues an access token for the assertion's subject", async () => {
      const answer = await exchange(await assertion({}))
      expect(answer.status).toBe(200)
      expect(answer.body).toMatchObject({ token_type: "Bearer", expires_in: 60, scope: "api:read" })
      expect(await oauth.introspect(stringField(answer, "access_token"))).toMatchObject({
        active: true,
        sub: "service-7",
        aud: RESOURCE,
        client_id: "broker"
      })
      expect(oauth.tokenRequests.count(JWT_BEARER_GRANT)).toBe(1)
    })

    it("refuses a reused jti, a wrong audience, an expired assertion and an unknown issuer", async () => {
      const once = await assertion({ jti: "only-once" })
      expect((await exchange(once)).status).toBe(200)
      const now = Math.floor(Date.now() / 1000)
      for (const signed of [
        once,
        await assertion({ aud: oauth.issuer }),
        await assertion({ exp: now - 60 }),
        await assertion({ iss: "https://stranger.test" })
      ]) {
        const answer = await exchange(signed)
        expect(answer.status).toBe(400)
        expect(answer.body.error).toBe("invalid_grant")
      }
    })

    it("refuses a disallowed scope and an unknown resource", async () => {
      const scope = await token({
        grant_type: JWT_BEARER_GRANT,
        assertion: await assertion({}),
        scope: DISALLOWED_SCOPE
      })
      expect(scope.status).toBe(400)
      expect(scope.body.error).toBe("invalid_scope")
      const target = await token({
        grant_type: JWT_BEARER_GRANT,
        assertion: await assertion({}),
        resource: "https://elsewhere.test/"
      })
      expect(target.status).toBe(400)
      expect(target.body.error).toBe("invalid_target")
    })
  })

  describe("token exchange (RFC 8693)", () => {
    const userAccessToken = async () => {
      const refreshToken = await oauth.seedUserRefreshToken({
        accountId: "user-9",
        scope: "offline_access api:read api:write",
        resource: RESOURCE
      })
      return stringField(await token({ grant_type: "refresh_token", refresh_token: refreshToken }), "access_token")
    }

    it("exchanges a valid access token for one with the requested audience", async () => {
      const subjectToken = await userAccessToken()
      const answer = await token({
        grant_type: TOKEN_EXCHANGE_GRANT,
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        audience: "https://api.test/b",
        scope: "api:read"
      })
      expect(answer.status).toBe(200)
      expect(answer.body).toMatchObject({
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        scope: "api:read"
      })
      expect(await oauth.introspect(stringField(answer, "access_token"))).toMatchObject({
        active: true,
        sub: "user-9",
        aud: "https://api.test/b",
        scope: "api:read"
      })
    })

    it("refuses an unknown subject token, an unknown audience and a wider scope", async () => {
      const subjectToken = await userAccessToken()
      const base = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token_type: ACCESS_TOKEN_TYPE }
      const unknown = await token({ ...base, subject_token: "nope", audience: "https://api.test/b" })
      expect(unknown.status).toBe(400)
      expect(unknown.body.error).toBe("invalid_grant")
      const target = await token({ ...base, subject_token: subjectToken, audience: "https://elsewhere.test/" })
      expect(target.status).toBe(400)
      expect(target.body.error).toBe("invalid_target")
      const wider = await token({
        ...base,
        subject_token: subjectToken,
        audience: "https://api.test/b",
        scope: DISALLOWED_SCOPE
      })
      expect(wider.status).toBe(400)
      expect(wider.body.error).toBe("invalid_scope")
    })
  })

  describe("authorization code flow through devInteractions", () => {
    const redirectUri = "http://127.0.0.1/callback"
    const authorizationUrl = async (extra: Record<string, string> = {}) => {
      const verifier = base64url(randomBytes(32))
      const challenge = base64url(createHash("sha256").update(verifier).digest())
      const url = new URL(oauth.authorizationEndpoint)
      url.search = new URLSearchParams({
        client_id: "broker",
        response_type: "code",
        redirect_uri: redirectUri,
        scope: "openid offline_access api:read",
        resource: RESOURCE,
        prompt: "consent",
        state: "state-1",
        code_challenge: challenge,
        code_challenge_method: "S256",
        ...extra
      }).toString()
      return { url: url.href, verifier }
    }

    it("signs in, consents, and the code gives tokens with RAR details and a refresh token", async () => {
      const details = [{ type: "payment_initiation", instructedAmount: { currency: "EUR", amount: "12.00" } }]
      const { url, verifier } = await authorizationUrl({ authorization_details: JSON.stringify(details) })
      const callback = await oauth.completeAuthorization(url, { accountId: "alice" })
      expect(`${callback.origin}${callback.pathname}`).toBe(redirectUri)
      expect(callback.searchParams.get("state")).toBe("state-1")
      expect(callback.searchParams.get("iss")).toBe(oauth.issuer)
      const code = callback.searchParams.get("code")
      expect(code).toBeTypeOf("string")

      const answer = await token({
        grant_type: "authorization_code",
        code: code ?? "",
        redirect_uri: redirectUri,
        code_verifier: verifier
      })
      expect(answer.status).toBe(200)
      expect(answer.body).toMatchObject({ scope: "api:read", authorization_details: details })
      expect(typeof answer.body.id_token).toBe("string")
      expect(await oauth.introspect(stringField(answer, "access_token"))).toMatchObject({
        active: true,
        sub: "alice",
        aud: RESOURCE,
        authorization_details: details
      })

      const refreshed = await token({
        grant_type: "refresh_token",
        refresh_token: stringField(answer, "refresh_token")
      })
      expect(refreshed.status).toBe(200)
      expect(refreshed.body).toMatchObject({ scope: "api:read", authorization_details: details })

      const reused = await token({
        grant_type: "authorization_code",
        code: code ?? "",
        redirect_uri: redirectUri,
        code_verifier: verifier
      })
      expect(reused.status).toBe(400)
      expect(reused.body.error).toBe("invalid_grant")
    })

    it("a user who declines sends the client access_denied", async () => {
      const { url } = await authorizationUrl()
      const callback = await oauth.completeAuthorization(url, { accountId: "bob", deny: true })
      expect(callback.searchParams.get("error")).toBe("access_denied")
      expect(callback.searchParams.get("state")).toBe("state-1")
    })
  })

  it("answered no request with server_error", () => {
    expect(oauth.serverErrors).toEqual([])
  })
})

describe("oauthProvider options", () => {
  it("without rotation a refresh keeps the same refresh token", async () => {
    const oauth = await startOAuthProvider({ rotateRefreshToken: false, accessTokenTtl: 30 })
    try {
      const refreshToken = await oauth.seedUserRefreshToken({
        accountId: "user-1",
        scope: "offline_access api:read",
        resource: RESOURCE
      })
      for (let i = 0; i < 2; i++) {
        const answer = await post(oauth.tokenEndpoint, oauth.clients.broker, {
          grant_type: "refresh_token",
          refresh_token: refreshToken
        })
        expect(answer.status).toBe(200)
        expect(answer.body).toMatchObject({ refresh_token: refreshToken, expires_in: 30 })
      }
    } finally {
      await oauth.close()
    }
  })
})
