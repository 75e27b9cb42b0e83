/**
 * The operator's dashboard in a real browser: sign in with the admin token,
 * the seeded connectors and grants, a search, a revocation that the next token
 * request sees, an authorization tried from the page, sign-out; and what must
 * not work: pages without a session, a forged cross-site form, a secret in a
 * page. Screenshots of each page go to `docs/dashboard/` with
 * `CONNECT_TEST_SCREENSHOTS=1` (elsewhere, to a temporary directory).
 */
import { mkdirSync, mkdtempSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { BrowserContext, Locator, Page } from "playwright-core"
import { adminRoutes } from "../src/AdminApi.js"
import { type RunningBroker, startBroker } from "./support/broker.js"
import { oauthClientOf, productionProject, startBrokerWithProvider } from "./support/brokerWithProvider.js"
import { browserAvailable, browserRequired, launchBrowser, NO_BROWSER } from "./support/browser.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { adminRequest, postJson, visit } from "./support/http.js"
import type { OAuthProviderHarness } from "./support/oauthProvider.js"

const ADMIN = "admin_dashboard_token_5c1d7e9f2b4a"
const KEY = "ck_dashboard_production_key_71f3a9"
const HOUR = 3_600_000

const screenshots =
  process.env.CONNECT_TEST_SCREENSHOTS === "1"
    ? join(dirname(fileURLToPath(import.meta.url)), "..", "docs", "dashboard")
    : mkdtempSync(join(tmpdir(), "connect-dashboard-shots-"))

/** Waits (up to 10 s) for the browser to show `text` in `locator`: pages load and scripts poll on their own time. */
const expectText = async (locator: Locator, text: string) => {
  const deadline = Date.now() + 10_000
  let last = ""
  while (Date.now() < deadline) {
    last = await locator
      .first()
      .textContent({ timeout: 1_000 })
      .then((text) => text ?? "")
      .catch(() => "")
    if (last.includes(text)) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`expected "${text}" on the page, found: ${last.slice(0, 500)}`)
}

describe("the dashboard without an admin token", () => {
  it("says how to enable it, and shows or does nothing else", async () => {
    const database = sqlite()
    const broker = await startBroker({
      database,
      config: {
        connectors: [
          {
            uid: "acme/hidden",
            name: "Hidden",
            type: "oauth",
            clientId: "c",
            clientSecret: "s",
            tokenEndpoint: "https://auth.example.test/token"
          }
        ]
      }
    })
    try {
      for (const path of ["/dashboard", "/dashboard/projects", "/dashboard/connectors/acme%2Fhidden"]) {
        const answer = await visit(`${broker.url}${path}`)
        expect(answer.status).toBe(404)
        expect(answer.text).toContain("CONNECT_ADMIN_TOKEN")
        expect(answer.text).not.toContain("acme/hidden")
        expect(answer.text).not.toContain("<form")
      }
      const signIn = await fetch(`${broker.url}/dashboard/sign-in`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: broker.url },
        body: "token=anything"
      })
      expect(signIn.status).toBe(404)
      expect(signIn.headers.get("set-cookie")).toBeNull()
    } finally {
      await broker.close()
      await database.drop()
    }
  })
})

if (!browserAvailable && browserRequired) {
  describe("the dashboard in a browser", () => {
    it("needs a browser (CONNECT_TEST_REQUIRE_BROWSER=1)", () => {
      throw new Error(NO_BROWSER)
    })
  })
}

describe.skipIf(!browserAvailable)(`the dashboard in a browser${browserAvailable ? "" : ` (${NO_BROWSER})`}`, () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let browser: { readonly context: BrowserContext; readonly close: () => Promise<void> }
  let tab: Page
  /** Every secret the broker holds or handed out that a page must never show. */
  const secrets = new Set<string>([ADMIN, KEY])
  /** Every HTML answer the browser got from the broker, by URL. */
  const pages: Array<{ readonly url: string; readonly html: string }> = []
  /** Every request the browser sent, and every policy violation it reported. */
  const requests: Array<string> = []
  const violations: Array<string> = []

  const tokenFor = async (subject: unknown) => {
    const answer = await postJson(`${broker.url}/v1/connect/token/acme%2Fapi`, { subject }, KEY)
    return { status: answer.status, body: (await answer.json()) as { token?: string; error?: { code: string } } }
  }
  const grants = async () =>
    (
      (await adminRequest(broker.url, ADMIN, adminRoutes.listGrants, { connector: "acme/api" })) as {
        grants: ReadonlyArray<{ id: string; user?: string; status: string; lostReason?: string }>
      }
    ).grants
  const grantOf = async (user: string) => (await grants()).find((g) => g.user === user)
  const shoot = async (name: string) => {
    await tab.screenshot({ path: join(screenshots, `${name}.png`) })
  }

  /** Imports a user's tokens as a caller would, their refresh token from the provider (or a made-up one). */
  const seedUser = async (id: string, refreshToken: string, expiresAt: number) => {
    const accessToken = `imported-access-${id}-${Math.random().toString(36).slice(2)}`
    secrets.add(refreshToken).add(accessToken)
    const answer = await postJson(
      `${broker.url}/v1/connect/token/acme%2Fapi/import`,
      { tokens: [{ subject: { type: "user", id }, accessToken, expiresAt, refreshToken, environment: "production" }] },
      KEY
    )
    expect(answer.status).toBe(200)
  }

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true })
    database = sqlite()
    const started = await startBrokerWithProvider({
      database,
      env: { CONNECT_ADMIN_TOKEN: ADMIN },
      config: (provider) => ({
        connectors: [
          {
            uid: "acme/api",
            name: "Acme API",
            ...oauthClientOf(provider),
            authorizationEndpoint: provider.authorizationEndpoint,
            revocationEndpoint: provider.revocationEndpoint,
            defaultScopes: { user: ["openid", "offline_access", "api:read"], app: ["api:read"] }
          }
        ],
        ...productionProject({ id: "prj_web", key: KEY }, ["acme/api"])
      })
    })
    provider = started.provider
    broker = started.broker
    secrets.add(provider.clients.broker.clientSecret)
    for (const user of ["ada", "grace"]) {
      const refresh = await provider.seedUserRefreshToken({ accountId: user, scope: "openid offline_access api:read" })
      await seedUser(user, refresh, Date.now() + HOUR)
    }
    // Some traffic for the charts: tokens handed out again from the store.
    for (const user of ["ada", "grace", "grace"]) expect((await tokenFor({ type: "user", id: user })).status).toBe(200)
    // A grant the provider no longer honours: the next request finds it invalid, and says why.
    await seedUser("bob", "made-up-refresh-token-of-bob-0001", Date.now() - 1000)
    expect((await tokenFor({ type: "user", id: "bob" })).body.error?.code).toBe("user_authorization_required")
    expect(await grantOf("bob")).toMatchObject({
      status: "invalid",
      lostReason: expect.stringContaining("invalid_grant")
    })

    browser = await launchBrowser()
    tab = browser.context.pages()[0] ?? (await browser.context.newPage())
    tab.on("request", (request) => requests.push(request.url()))
    tab.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text())
    })
    tab.on("response", async (response) => {
      if ((response.headers()["content-type"] ?? "").startsWith("text/html") && response.url().startsWith(broker.url)) {
        pages.push({ url: response.url(), html: await response.text().catch(() => "") })
      }
    })
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("the admin API lists grants with their status and why, searches and pages them, refuses unknown parameters", async () => {
    const url = `${broker.url}/v1/admin/connectors/acme%2Fapi/grants`
    const get = async (query: string) => {
      const answer = await fetch(`${url}${query}`, { headers: { authorization: `Bearer ${ADMIN}` } })
      return { status: answer.status, body: (await answer.json()) as Record<string, unknown> }
    }
    const bob = await get("?user=bob")
    expect(bob.body).toMatchObject({ total: 1, grants: [{ user: "bob", status: "invalid", project: "prj_web" }] })
    expect((await get("?limit=1&offset=1")).body).toMatchObject({ total: 3, offset: 1, limit: 1 })
    const unknown = await get("?usr=bob")
    expect(unknown.status).toBe(400)
    expect(JSON.stringify(unknown.body)).toContain("usr")
    expect((await get("?limit=0")).status).toBe(400)
  })

  it("shows nothing and changes nothing without a session", async () => {
    const overview = await visit(`${broker.url}/dashboard`)
    expect(overview.status).toBe(401)
    expect(overview.text).toContain("Admin token")
    expect(overview.text).not.toContain("acme/api")
    for (const path of ["/dashboard/projects", "/dashboard/connectors/acme%2Fapi", "/dashboard/try"]) {
      const answer = await visit(`${broker.url}${path}`)
      expect(answer.status).toBe(401)
      expect(answer.text).not.toContain("prj_web")
    }
    const ada = await grantOf("ada")
    const revoke = await fetch(`${broker.url}/dashboard/connectors/acme%2Fapi/grants/${ada?.id}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: broker.url },
      body: "csrf=guessed"
    })
    expect(revoke.status).toBe(403)
    expect((await grantOf("ada"))?.status).toBe("active")
  })

  it("signs in, shows the connectors and grants, finds a user, revokes a grant after confirming", async () => {
    await tab.goto(`${broker.url}/dashboard`)
    await shoot("sign-in")
    await tab.getByLabel("Admin token").fill("not-the-token")
    await tab.getByRole("button", { name: "Sign in" }).click()
    await expectText(tab.getByRole("alert"), "not the admin token")
    await tab.getByLabel("Admin token").fill(ADMIN)
    await tab.getByRole("button", { name: "Sign in" }).click()
    await tab.waitForURL(`${broker.url}/dashboard`)
    expect(await tab.getByRole("heading", { level: 1 }).textContent()).toBe("Overview")
    const cookie = (await browser.context.cookies()).find((c) => c.name === "connect_dashboard")
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/dashboard" })
    const row = tab.getByRole("row", { name: /acme\/api/ }).first()
    await expectText(row, "Acme API")
    await expectText(tab.getByRole("region", { name: "Providers' health" }), "invalid_grant")
    await shoot("overview")
    await tab.setViewportSize({ width: 390, height: 844 })
    await shoot("overview-phone")
    await tab.setViewportSize({ width: 1280, height: 800 })

    // Keyboard: the first Tab reaches a link of the navigation.
    await tab.keyboard.press("Tab")
    expect(await tab.evaluate(() => document.activeElement?.tagName)).toMatch(/^(A|BUTTON)$/)

    await tab.getByRole("link", { name: "acme/api" }).first().click()
    const grantsTable = tab.locator('div[role="region"][aria-label="Grants"]')
    for (const user of ["ada", "grace", "bob"]) await expectText(grantsTable, user)
    await expectText(grantsTable, "invalid")
    await expectText(tab.locator("dl"), "set (never shown)")
    await tab.screenshot({ path: join(screenshots, "connector.png"), fullPage: true })
    await tab.getByLabel("User id").fill("ada")
    await tab.getByRole("button", { name: "Search" }).click()
    await tab.waitForURL(/user=ada/)
    await expectText(grantsTable, "ada")
    expect(await grantsTable.textContent()).not.toContain("grace")

    expect((await tokenFor({ type: "user", id: "ada" })).status).toBe(200)
    await tab.getByRole("link", { name: /Revoke grant of ada/ }).click()
    await expectText(tab.getByRole("heading", { level: 1 }), "Revoke grant")
    await shoot("confirm")
    await tab.getByRole("button", { name: "Revoke the grant" }).click()
    await expectText(tab.locator("main"), "Done: ")
    expect((await grantOf("ada"))?.status).toBe("revoked")
    const after = await tokenFor({ type: "user", id: "ada" })
    expect(after.body.error?.code).toBe("user_authorization_required")
    const graceToken = (await tokenFor({ type: "user", id: "grace" })).body.token
    expect(graceToken).toBeDefined()

    // Revoking one token: it is not handed out again; the next request gets a new one by the grant.
    await tab.goto(`${broker.url}/dashboard/connectors/acme%2Fapi`)
    await tab
      .getByRole("link", { name: /Revoke token/ })
      .first()
      .click()
    await expectText(tab.getByRole("heading", { level: 1 }), "Revoke token")
    await tab.getByRole("button", { name: "Revoke the token" }).click()
    await expectText(tab.locator("main"), "Done: ")
    const renewed = await tokenFor({ type: "user", id: "grace" })
    expect(renewed.status).toBe(200)
    expect(renewed.body.token).not.toBe(graceToken)
    secrets.add(renewed.body.token ?? "missing")
  }, 60_000)

  it("refuses a forged cross-site form, even one with the session's CSRF token", async () => {
    await tab.goto(`${broker.url}/dashboard/try`)
    const csrf = await tab.locator('input[name="csrf"]').first().inputValue()
    const grace = await grantOf("grace")
    const target = `${broker.url}/dashboard/connectors/acme%2Fapi/grants/${grace?.id}/revoke`
    // Another origin on the same host: the same site for SameSite, so the origin checks are what refuse it.
    const attacker: Server = createServer((_, response) => {
      response.setHeader("content-type", "text/html")
      response.end(
        `<form id="f" method="post" action="${target}"><input name="csrf" value="${csrf}"></form><script>document.getElementById("f").submit()</script>`
      )
    })
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve))
    const address = attacker.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      await tab.goto(`http://127.0.0.1:${port}/`)
      await tab.waitForURL(/\/grants\/[^/]+\/revoke$/, { timeout: 10_000 })
      await expectText(tab.locator("main"), "Nothing was changed")
      // The same form sent with the session's cookie, from another origin.
      const cookie = (await browser.context.cookies()).find((c) => c.name === "connect_dashboard")
      const forged = await fetch(target, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          cookie: `connect_dashboard=${cookie?.value}`,
          origin: `http://127.0.0.1:${port}`,
          "sec-fetch-site": "same-site"
        },
        body: `csrf=${encodeURIComponent(csrf)}`
      })
      expect(forged.status).toBe(403)
    } finally {
      // The browser keeps its connection open: close it, or the server never closes.
      attacker.closeAllConnections()
      await new Promise((resolve) => attacker.close(resolve))
    }
    expect((await grantOf("grace"))?.status).toBe("active")
  }, 60_000)

  it("tries an authorization and an app token, shows a new key once, and signs out", async () => {
    await tab.goto(`${broker.url}/dashboard/try`)
    await tab.getByLabel("Test user id").fill("tess")
    await tab.getByRole("button", { name: "Start the authorization" }).click()
    const link = (await tab.locator("#authorize-link").getAttribute("href")) ?? ""
    expect(link.startsWith(`${broker.url}/v1/connect/authorize/`)).toBe(true)
    const toProvider = await visit(link)
    const callback = await provider.completeAuthorization(toProvider.location ?? "", { accountId: "tess" })
    expect((await visit(callback)).status).toBe(200)
    await tab.locator('[data-state="completed"]').waitFor({ timeout: 15_000 })
    expect(await tab.locator("output[data-status]").textContent()).toBe("completed")
    expect((await grantOf("tess"))?.status).toBe("active")
    await shoot("try-authorization")

    await tab.getByRole("button", { name: "Get an app token" }).click()
    const shown = (await tab.locator("#app-token-value").textContent()) ?? ""
    expect(shown).toMatch(/^.{4}….{4}$/)
    const app = await tokenFor({ type: "app" })
    expect(app.status).toBe(200)
    secrets.add(app.body.token ?? "missing")
    expect(shown.slice(0, 4)).toBe(app.body.token?.slice(0, 4))
    await shoot("try-token")

    await tab.getByRole("link", { name: "Projects" }).click()
    await tab.getByRole("button", { name: /Create a key/ }).click()
    const key = (await tab.locator("#new-key").textContent()) ?? ""
    expect(key).toMatch(/^ck_/)
    expect((await tokenFor({ type: "user", id: "grace" })).status).toBe(200)
    await tab.getByRole("link", { name: "Projects" }).click()
    const again = await tab.content()
    expect(again).not.toContain(key)
    expect(again).toContain(`${key.slice(0, 8)}…`)
    await shoot("projects")
    secrets.add(key)
    const creation = pages.findIndex((p) => p.html.includes(key))
    if (creation >= 0) pages.splice(creation, 1)

    await tab.getByRole("button", { name: "Sign out" }).click()
    await tab.getByLabel("Admin token").waitFor()
    await tab.goto(`${broker.url}/dashboard/projects`)
    await tab.getByLabel("Admin token").waitFor()
  }, 60_000)

  it("never shows a secret, asks nothing of another host, and breaks no policy", async () => {
    expect(pages.length).toBeGreaterThan(8)
    for (const { url, html } of pages) {
      for (const secret of secrets) {
        if (html.includes(secret)) throw new Error(`${url} shows a secret (${secret.slice(0, 4)}…)`)
      }
    }
    const elsewhere = requests.filter(
      (url) => !url.startsWith(broker.url) && !/^http:\/\/127\.0\.0\.1:\d+\/$/.test(url)
    )
    expect(elsewhere).toEqual([])
    expect(violations).toEqual([])
    const answer = await fetch(`${broker.url}/dashboard`)
    expect(answer.headers.get("content-security-policy")).toContain("default-src 'self'")
  })
})
