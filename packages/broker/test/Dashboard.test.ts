/**
 * The dashboard's parts that need no browser: its session cookie (sealed,
 * expiring, bound to the admin token), its checks of where a change comes
 * from, and its escaping of everything a page shows.
 */

import * as Headers from "@effect/platform/Headers"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, TestClock } from "effect"
import * as Cipher from "../src/Cipher.js"
import { crossSiteProblem, csrfMatches } from "../src/internal/dashboard/csrf.js"
import { html, shortened } from "../src/internal/dashboard/html.js"
import { connectorView } from "../src/internal/dashboard/pages.js"
import { newSession, open, seal, secureCookie } from "../src/internal/dashboard/session.js"

const TOKEN = Redacted.make("admin-token-for-the-session-tests")
const HOUR = 3_600_000

const cipher = (key = Cipher.generateKey()) => Cipher.make(Redacted.make(key)).pipe(Effect.orDie)

describe("Dashboard", () => {
  it.effect("a session opens with the same key and admin token until it expires, and never after", () =>
    Effect.gen(function* () {
      const key = Cipher.generateKey()
      const sealer = yield* cipher(key)
      const session = newSession(TOKEN, 0, 8 * HOUR)
      const cookie = yield* seal(sealer, session)
      expect(cookie).not.toContain(session.csrf)
      yield* TestClock.adjust(8 * HOUR - 1)
      const now = () => Effect.clockWith((clock) => clock.currentTimeMillis)
      expect(Option.isSome(yield* open(sealer, cookie, TOKEN, yield* now()))).toBe(true)
      // Another admin token (it was changed), another broker's key, a tampered cookie: no session.
      expect(yield* open(sealer, cookie, Redacted.make("the-new-admin-token"), yield* now())).toEqual(Option.none())
      expect(yield* open(yield* cipher(), cookie, TOKEN, yield* now())).toEqual(Option.none())
      // Another replica, with the same key, reads it.
      expect(Option.isSome(yield* open(yield* cipher(key), cookie, TOKEN, yield* now()))).toBe(true)
      // One character of the ciphertext changed (not the last, whose low bits may not count).
      const changed = cookie.at(-3) === "A" ? "B" : "A"
      const tampered = `${cookie.slice(0, -3)}${changed}${cookie.slice(-2)}`
      expect(yield* open(sealer, tampered, TOKEN, yield* now())).toEqual(Option.none())
      yield* TestClock.adjust(1)
      expect(yield* open(sealer, cookie, TOKEN, yield* now())).toEqual(Option.none())
    })
  )

  it("takes a change only from its own origin, with the session's CSRF token", () => {
    const same = { host: "127.0.0.1:4100", origin: "http://127.0.0.1:4100", "sec-fetch-site": "same-origin" }
    const problem = (headers: Record<string, string>) => crossSiteProblem(Headers.fromInput(headers))
    expect(problem(same)).toBeUndefined()
    expect(problem({ ...same, origin: "http://127.0.0.1:9999", "sec-fetch-site": "same-site" })).toBeDefined()
    expect(problem({ ...same, origin: "http://127.0.0.1:9999" })).toBeDefined()
    expect(problem({ ...same, origin: "null" })).toBeDefined()
    expect(problem({ host: same.host })).toBeDefined()
    const session = newSession(TOKEN, 0, HOUR)
    expect(csrfMatches(session, session.csrf)).toBe(true)
    expect(csrfMatches(session, `${session.csrf}x`)).toBe(false)
    expect(csrfMatches(session, undefined)).toBe(false)
  })

  it("marks the cookie Secure except for plain HTTP on a loopback address", () => {
    expect(secureCookie("http://127.0.0.1:4100")).toBe(false)
    expect(secureCookie("http://localhost:4100")).toBe(false)
    expect(secureCookie("http://broker.internal:4100")).toBe(true)
    expect(secureCookie("https://connect.example.com")).toBe(true)
  })

  it("escapes every value it shows, and shortens tokens", () => {
    const hostile = `<script>alert("x")</script>`
    expect(html`<p title="${hostile}">${hostile}</p>`.text).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>'
    )
    const page = connectorView(
      {
        connector: {
          id: "conn_1",
          uid: "evil/<img src=x onerror=alert(1)>",
          name: hostile,
          type: "oauth",
          service: "evil",
          clientId: "client",
          tokenEndpoint: "https://auth.example.test/token",
          tokenEndpointAuthMethod: "client_secret_basic",
          defaultScopes: {},
          defaultTokenLifetimeSeconds: 3600,
          hasPrivateKey: false,
          installationsRequired: false,
          crossInstallation: false,
          data: {},
          createdAt: 0,
          updatedAt: 0
        },
        grants: {
          grants: [
            {
              id: "grt_1",
              subject: `user:[null,"${hostile}"]`,
              user: hostile,
              status: "lost",
              lostReason: hostile,
              hasRefreshToken: true,
              createdAt: 0,
              updatedAt: 0
            }
          ],
          total: 1,
          offset: 0,
          limit: 20
        },
        tokens: [],
        search: hostile
      },
      "csrf-token"
    ).text
    expect(page).not.toContain("<script>alert")
    expect(page).not.toContain("<img src=x")
    expect(page).toContain("&lt;script&gt;")
    expect(shortened("abcdefghijklmnopqrstuvwxyz")).toBe("abcd…wxyz")
    expect(shortened("short")).toBe("…")
  })
})
