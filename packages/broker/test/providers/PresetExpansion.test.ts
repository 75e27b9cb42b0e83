import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { decode } from "../../src/ConfigFile.js"

const SECRET = "preset-client-secret-Qw83"

const connector = (fields: Record<string, unknown>) => ({
  connectors: [{ uid: "acme/one", clientId: "client-1", clientSecret: SECRET, ...fields }]
})

const decodeOne = (fields: Record<string, unknown>) =>
  Effect.map(decode(connector(fields)), (setup) => {
    const [first] = setup.connectors
    if (first === undefined) throw new Error("no connector")
    return first
  })

const issuesOf = (fields: Record<string, unknown>) =>
  Effect.map(Effect.either(decode(connector(fields))), (result) => {
    if (Either.isRight(result)) throw new Error("expected the configuration to be refused")
    return result.left.issues
  })

let server: Server
let issuer: string
let document: (issuer: string) => { readonly status: number; readonly body: unknown } = () => ({
  status: 404,
  body: {}
})

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = document(issuer)
    res.writeHead(answer.status, { "content-type": "application/json" })
    res.end(req.url === "/.well-known/openid-configuration" ? JSON.stringify(answer.body) : "{}")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe("a connector naming a provider", () => {
  it.effect("takes the preset's settings: only uid, client id and secret are given", () =>
    Effect.gen(function* () {
      const github = yield* decodeOne({ provider: "github" })
      expect(github).toMatchObject({
        name: "GitHub",
        type: "oauth",
        provider: "github",
        tokenEndpoint: "https://github.com/login/oauth/access_token",
        authorizationEndpoint: "https://github.com/login/oauth/authorize",
        tokenEndpointAuthMethod: "client_secret_post",
        defaultTokenLifetimeSeconds: 28800,
        defaultScopes: { user: ["read:user"] }
      })
      const google = yield* decodeOne({ provider: "google" })
      expect(google.authorizationParams).toEqual({ access_type: "offline", prompt: "consent" })
      const slack = yield* decodeOne({ provider: "slack" })
      expect(slack).toMatchObject({
        userTokenMember: "authed_user",
        installations: { required: true, tenantIdFrom: { tokenResponse: "team.id" } }
      })
    })
  )

  it.effect("explicit settings override the preset's; objects are merged member by member", () =>
    Effect.gen(function* () {
      const slack = yield* decodeOne({
        provider: "slack",
        name: "Acme Slack",
        tokenEndpoint: "https://slack.example/token",
        defaultScopes: { user: ["search:read"] },
        installations: { required: false }
      })
      expect(slack).toMatchObject({
        name: "Acme Slack",
        tokenEndpoint: "https://slack.example/token",
        authorizationEndpoint: "https://slack.com/oauth/v2/authorize",
        defaultScopes: { app: ["chat:write"], user: ["search:read"] },
        installations: { required: false, tenantIdFrom: { tokenResponse: "team.id" } }
      })
    })
  )

  it.effect("{tenantId} is the connector's tenantId, or the preset's default; without either, named", () =>
    Effect.gen(function* () {
      const zendesk = yield* decodeOne({ provider: "zendesk", tenantId: "acme" })
      expect(zendesk.tokenEndpoint).toBe("https://acme.zendesk.com/oauth/tokens")
      const entra = yield* decodeOne({ provider: "microsoft" })
      expect(entra.tokenEndpoint).toBe("https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
      // Installations keep their template: each is filled with its own tenant.
      expect(entra.installations.tokenEndpoint).toBe("https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token")
      expect(yield* issuesOf({ provider: "shopify" })).toEqual([
        {
          path: "connectors[0].tenantId",
          message: "the shopify preset needs tenantId: the shop's subdomain (acme for acme.myshopify.com)"
        }
      ])
      const own = yield* decodeOne({
        provider: "shopify",
        tokenEndpoint: "https://shop.example/token",
        authorizationEndpoint: "https://shop.example/authorize"
      })
      expect(own.tokenEndpoint).toBe("https://shop.example/token")
    })
  )

  it.effect("an unknown provider, and what a preset requires, are refused by name; no secret in any issue", () =>
    Effect.gen(function* () {
      const unknown = yield* issuesOf({ provider: "githib" })
      expect(unknown[0]?.path).toBe("connectors[0].provider")
      expect(unknown[0]?.message).toMatch(/^unknown provider "githib": expected one of .*github-app.*/)
      const app = yield* issuesOf({ provider: "github-app" })
      expect(app.map((issue) => issue.path)).toEqual(["connectors[0].appTokens.appId", "connectors[0].privateKey"])
      expect(JSON.stringify([unknown, app])).not.toContain(SECRET)
    })
  )

  it.effect("oidc: the endpoints come from the issuer's discovery document, checked", () =>
    Effect.gen(function* () {
      document = (iss) => ({
        status: 200,
        body: {
          issuer: iss,
          authorization_endpoint: `${iss}/auth`,
          token_endpoint: `${iss}/token`,
          revocation_endpoint: `${iss}/revoke`,
          token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt"]
        }
      })
      const oidc = yield* decodeOne({ provider: "oidc", issuer })
      expect(oidc).toMatchObject({
        tokenEndpoint: `${issuer}/token`,
        authorizationEndpoint: `${issuer}/auth`,
        revocationEndpoint: `${issuer}/revoke`,
        tokenEndpointAuthMethod: "client_secret_post"
      })
      document = () => ({
        status: 200,
        body: { issuer: "https://other.example", token_endpoint: "https://other.example/t" }
      })
      expect((yield* issuesOf({ provider: "oidc", issuer }))[0]?.message).toMatch(/names another issuer/)
      document = (iss) => ({ status: 200, body: { issuer: iss } })
      expect((yield* issuesOf({ provider: "oidc", issuer }))[0]).toMatchObject({
        path: "connectors[0].issuer",
        message: expect.stringMatching(/is not a discovery document \(token_endpoint: is missing\)/)
      })
      document = () => ({ status: 404, body: {} })
      // One issue each: the endpoints the document would have given are not reported missing too.
      expect(yield* issuesOf({ provider: "oidc", issuer })).toEqual([
        { path: "connectors[0].issuer", message: `${issuer}/.well-known/openid-configuration answered HTTP 404` }
      ])
      expect(yield* issuesOf({ provider: "oidc" })).toEqual([
        {
          path: "connectors[0].issuer",
          message:
            "the oidc preset needs issuer: the provider's issuer URL, whose /.well-known/openid-configuration is read"
        }
      ])
    })
  )

  it.effect(
    "oidc: the authentication method the document offers, Basic when it names none, and none it cannot use",
    () =>
      Effect.gen(function* () {
        const offering = (methods: ReadonlyArray<string> | undefined) => {
          document = (iss) => ({
            status: 200,
            body: {
              issuer: iss,
              token_endpoint: `${iss}/token`,
              ...(methods === undefined ? {} : { token_endpoint_auth_methods_supported: methods })
            }
          })
        }
        offering(undefined)
        expect((yield* decodeOne({ provider: "oidc", issuer })).tokenEndpointAuthMethod).toBe("client_secret_basic")
        offering(["private_key_jwt", "client_secret_post"])
        expect((yield* decodeOne({ provider: "oidc", issuer })).tokenEndpointAuthMethod).toBe("client_secret_post")
        offering(["private_key_jwt", "tls_client_auth"])
        expect(yield* issuesOf({ provider: "oidc", issuer })).toEqual([
          {
            path: "connectors[0].issuer",
            message: `${issuer} accepts neither client_secret_basic nor client_secret_post at its token endpoint (it names private_key_jwt, tls_client_auth); set tokenEndpointAuthMethod to override`
          }
        ])
        // The connector's own method stands against the document.
        const own = yield* decodeOne({ provider: "oidc", issuer, tokenEndpointAuthMethod: "client_secret_post" })
        expect(own.tokenEndpointAuthMethod).toBe("client_secret_post")
      })
  )
})
