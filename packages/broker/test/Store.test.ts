import { readFileSync } from "node:fs"
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import { Cipher, generateKey } from "../src/Cipher.js"
import { migrations } from "../src/internal/migrations.js"
import { type ConnectorInput, hashKey, Store } from "../src/Store.js"
import { backends, layerOf, type TestDatabase } from "./support/databases.js"

const CLIENT_SECRET = "cs_distinctive_client_secret_4411"
const REFRESH_TOKEN = "rt_distinctive_refresh_token_9032"
const ACCESS_TOKEN = "at_distinctive_access_token_7719"
const CALLER_KEY = "ck_distinctive_caller_key_5520"

const connector = (uid: string, overrides: Partial<ConnectorInput> = {}): ConnectorInput => ({
  uid,
  name: `Connector ${uid}`,
  type: "oauth",
  service: uid.split("/")[0] ?? uid,
  clientId: "broker",
  clientSecret: Redacted.make(CLIENT_SECRET),
  settings: {
    tokenEndpoint: "https://auth.example.test/token",
    revocationEndpoint: "https://auth.example.test/revoke",
    tokenEndpointAuthMethod: "client_secret_basic",
    defaultScopes: { app: ["api:read"] },
    defaultTokenLifetimeSeconds: 3600,
    installationsRequired: false,
    crossInstallation: false,
    data: { region: "eu" }
  },
  ...overrides
})

describe.each(backends)("Store on $name", ({ make }) => {
  let database: TestDatabase
  let runtime: ManagedRuntime.ManagedRuntime<Store | SqlClient.SqlClient, never>
  const key = Redacted.make(generateKey())
  const run = <A, E>(effect: Effect.Effect<A, E, Store | SqlClient.SqlClient>) => runtime.runPromise(effect)

  beforeAll(async () => {
    database = await make()
    runtime = ManagedRuntime.make(
      Store.layer.pipe(Layer.provideMerge(layerOf(database)), Layer.provide(Cipher.layer(key).pipe(Layer.orDie)))
    )
  })
  afterAll(async () => {
    await runtime.dispose()
    await database.drop()
  })

  it("applies its migrations once: building the database again changes nothing", async () => {
    const again = ManagedRuntime.make(layerOf(database))
    const applied = await again.runPromise(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM effect_sql_migrations`
      )
    )
    await again.dispose()
    expect(Number(applied[0]?.n)).toBe(Object.keys(migrations).length)
  })

  it("saves a connector, finds it by uid or id, and keeps its id when it is declared again", async () => {
    const first = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("acme/api"))))
    expect(first.id).toMatch(/^conn_/)
    expect(Redacted.value(first.clientSecret)).toBe(CLIENT_SECRET)
    const second = await run(
      Effect.flatMap(Store, (store) => store.putConnector(connector("acme/api", { name: "Acme, renamed" })))
    )
    expect(second.id).toBe(first.id)
    expect(second.name).toBe("Acme, renamed")
    const byId = await run(Effect.flatMap(Store, (store) => store.findConnector(first.id)))
    const byUid = await run(Effect.flatMap(Store, (store) => store.findConnector("acme/api")))
    expect(Option.map(byId, (c) => c.uid)).toEqual(Option.some("acme/api"))
    expect(Option.map(byUid, (c) => c.settings.data)).toEqual(Option.some({ region: "eu" }))
    expect(Option.isNone(await run(Effect.flatMap(Store, (store) => store.findConnector("acme/none"))))).toBe(true)
  })

  it("seals the client secret: the row holds a ciphertext bound to the row", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("acme/sealed"))))
    const rows = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ client_secret: string }>`SELECT client_secret FROM connectors WHERE id = ${saved.id}`
      )
    )
    expect(rows[0]?.client_secret).toMatch(/^v1\./)
    expect(rows[0]?.client_secret).not.toContain(CLIENT_SECRET)
    // Moved to another row, the ciphertext does not open.
    const other = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("acme/other"))))
    await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql`UPDATE connectors SET client_secret = ${rows[0]?.client_secret ?? ""} WHERE id = ${other.id}`
      )
    )
    const error = await run(Effect.flip(Effect.flatMap(Store, (store) => store.findConnector(other.id))))
    expect(error._tag).toBe("StoreError")
    expect(error.message).not.toContain(CLIENT_SECRET)
  })

  it("keeps installations, projects, caller keys (as hashes only) and links", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("slack/acme"))))
    await run(
      Effect.gen(function* () {
        const store = yield* Store
        yield* store.setInstallations(saved.id, [
          { id: "T1", tenantId: "t1", isDefault: true, tokenEndpoint: undefined },
          { id: "T2", tenantId: "t2", isDefault: false, tokenEndpoint: "https://t2.example.test/{tenantId}/token" }
        ])
        yield* store.putProject({ id: "prj_web", name: "Web" })
        yield* store.putProjectKey("prj_web", "production", Redacted.make(CALLER_KEY))
        yield* store.putLink(saved.id, "prj_web", ["production", "preview", "production"])
      })
    )
    const installations = await run(Effect.flatMap(Store, (store) => store.listInstallations(saved.id)))
    expect(installations.map((i) => [i.id, i.isDefault, i.tenantId])).toEqual([
      ["T1", true, "t1"],
      ["T2", false, "t2"]
    ])
    const caller = await run(Effect.flatMap(Store, (store) => store.findCaller(Redacted.make(CALLER_KEY))))
    expect(caller).toEqual(Option.some({ projectId: "prj_web", environment: "production" }))
    const stranger = await run(Effect.flatMap(Store, (store) => store.findCaller(Redacted.make(`${CALLER_KEY}x`))))
    expect(Option.isNone(stranger)).toBe(true)
    const keys = await run(
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ key_hash: string }>`SELECT key_hash FROM project_keys`)
    )
    expect(keys.map((k) => k.key_hash)).toEqual([hashKey(Redacted.make(CALLER_KEY))])
    const link = await run(Effect.flatMap(Store, (store) => store.findLink(saved.id, "prj_web")))
    expect(link).toEqual(Option.some(["preview", "production"]))
    await run(Effect.flatMap(Store, (store) => store.removeLink(saved.id, "prj_web")))
    expect(Option.isNone(await run(Effect.flatMap(Store, (store) => store.findLink(saved.id, "prj_web"))))).toBe(true)
  })

  it("saves a grant, bumps its version on each change, and locks it for one writer at a time", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("github/acme"))))
    const id = await run(
      Effect.flatMap(Store, (store) =>
        store.putGrant({
          connectorId: saved.id,
          installationId: "",
          subject: "user:u1",
          refreshToken: Redacted.make(REFRESH_TOKEN)
        })
      )
    )
    const found = await run(Effect.flatMap(Store, (store) => store.findGrant(saved.id, "", "user:u1")))
    expect(
      Option.map(found, (g) => [g.id, g.version, g.status, g.refreshToken && Redacted.value(g.refreshToken)])
    ).toEqual(Option.some([id, 1, "active", REFRESH_TOKEN]))
    const rotated = await run(
      Effect.flatMap(Store, (store) =>
        store.withGrantLock(id, (grant) =>
          Effect.as(store.updateGrant(grant.id, { refreshToken: Redacted.make(`${REFRESH_TOKEN}-2`) }), grant.version)
        )
      )
    )
    expect(rotated).toBe(1)
    const after = await run(Effect.flatMap(Store, (store) => store.findGrant(saved.id, "", "user:u1")))
    expect(Option.map(after, (g) => [g.version, g.refreshToken && Redacted.value(g.refreshToken)])).toEqual(
      Option.some([2, `${REFRESH_TOKEN}-2`])
    )
    // Writes made with `transaction` under the lock are rolled back together on failure.
    const failed = await run(
      Effect.flip(
        Effect.flatMap(Store, (store) =>
          store.withGrantLock(id, (grant) =>
            store.transaction(
              Effect.zipRight(
                store.updateGrant(grant.id, { status: "invalid" }),
                Effect.fail("provider said no" as const)
              )
            )
          )
        )
      )
    )
    expect(failed).toBe("provider said no")
    const unchanged = await run(Effect.flatMap(Store, (store) => store.findGrant(saved.id, "", "user:u1")))
    expect(Option.map(unchanged, (g) => [g.status, g.version])).toEqual(Option.some(["active", 2]))
  })

  it("counts grants by status, as numbers", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("count/acme"))))
    const put = (subject: string) =>
      run(
        Effect.flatMap(Store, (store) =>
          store.putGrant({ connectorId: saved.id, installationId: "", subject, refreshToken: undefined })
        )
      )
    const before = await run(Effect.flatMap(Store, (store) => store.countGrantsByStatus))
    const countOf = (rows: typeof before, status: string) => rows.find((row) => row.status === status)?.count ?? 0
    await put("user:c1")
    const lost = await put("user:c2")
    await run(Effect.flatMap(Store, (store) => store.updateGrant(lost, { status: "lost" })))
    const after = await run(Effect.flatMap(Store, (store) => store.countGrantsByStatus))
    expect(countOf(after, "active") - countOf(before, "active")).toBe(1)
    expect(countOf(after, "lost") - countOf(before, "lost")).toBe(1)
    expect(after.every((row) => typeof row.count === "number")).toBe(true)
  })

  it("pages a connector's grants newest first, searching subjects literally, without their tokens", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("page/acme"))))
    const other = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("page/other"))))
    const subjects = ["user:ada", "user:adam", "user:grace", "user:50%_off", "user:500Xoff"]
    for (const subject of subjects) {
      await run(
        Effect.flatMap(Store, (store) =>
          store.putGrant({
            connectorId: saved.id,
            installationId: "",
            subject,
            refreshToken: Redacted.make(REFRESH_TOKEN)
          })
        )
      )
    }
    await run(
      Effect.flatMap(Store, (store) =>
        store.putGrant({ connectorId: other.id, installationId: "", subject: "user:ada", refreshToken: undefined })
      )
    )
    const page = (search: string | undefined, offset = 0, limit = 10) =>
      run(Effect.flatMap(Store, (store) => store.listGrantPage(saved.id, { search, offset, limit })))
    const all = await page(undefined)
    expect(all.total).toBe(5)
    expect(all.grants.every((grant) => grant.hasRefreshToken && typeof grant.createdAt === "number")).toBe(true)
    expect(JSON.stringify(all)).not.toContain(REFRESH_TOKEN)
    expect((await page("ada")).grants.map((grant) => grant.subject).sort()).toEqual(["user:ada", "user:adam"])
    // `%` and `_` are the user's characters, not wildcards.
    expect((await page("50%_")).grants.map((grant) => grant.subject)).toEqual(["user:50%_off"])
    const second = await page(undefined, 2, 2)
    expect(second.total).toBe(5)
    expect(second.grants.map((grant) => grant.subject)).toEqual(all.grants.slice(2, 4).map((grant) => grant.subject))

    const counts = await run(Effect.flatMap(Store, (store) => store.countGrantsByConnector))
    expect(counts.find((row) => row.connectorId === saved.id && row.status === "active")?.count).toBe(5)
    expect(counts.find((row) => row.connectorId === other.id && row.status === "active")?.count).toBe(1)
  })

  it("keeps a prefix of long caller keys, to tell them apart, and none of short ones", async () => {
    await run(Effect.flatMap(Store, (store) => store.putProject({ id: "prj_prefix", name: "Prefix" })))
    await run(
      Effect.flatMap(Store, (store) =>
        Effect.zipRight(
          store.putProjectKey("prj_prefix", "production", Redacted.make("ck_0123456789abcdefghijklmnopqrstuv")),
          store.putProjectKey("prj_prefix", "preview", Redacted.make("short-key"))
        )
      )
    )
    const keys = await run(Effect.flatMap(Store, (store) => store.listProjectKeys("prj_prefix")))
    expect(keys.map((key) => [key.environment, key.prefix])).toEqual([
      ["preview", undefined],
      ["production", "ck_01234"]
    ])
  })

  it("records issued tokens, reuses only active ones valid beyond the buffer, and marks them revoked", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("linear/acme"))))
    const base = {
      connectorId: saved.id,
      projectId: "prj_web",
      environment: "production",
      subject: "app",
      installationId: "",
      requestKey: "k1",
      grantId: undefined
    }
    const issued = await run(
      Effect.flatMap(Store, (store) =>
        store.insertIssuedToken({ ...base, accessToken: Redacted.make(ACCESS_TOKEN), expiresAt: Date.now() + 100_000 })
      )
    )
    expect(issued.id).toMatch(/^stk_/)
    const reuse = (now: number, bufferMs: number, requestKey = "k1") =>
      run(Effect.flatMap(Store, (store) => store.findReusableToken({ ...base, requestKey, now, bufferMs })))
    const created = issued.createdAt
    const expires = issued.expiresAt
    const lifetime = expires - created
    const found = async (now: number, bufferMs: number) => Option.isSome(await reuse(now, bufferMs))
    expect(Option.map(await reuse(created, 1_000), (t) => Redacted.value(t.accessToken))).toEqual(
      Option.some(ACCESS_TOKEN)
    )
    // Reused while more than the buffer is left...
    expect(await found(expires - 10_001, 10_000)).toBe(true)
    expect(await found(expires - 9_999, 10_000)).toBe(false)
    // ...or more than half its lifetime, when the buffer is longer than that.
    expect(await found(expires - Math.floor(lifetime / 2) - 1, 3_600_000)).toBe(true)
    expect(await found(expires - Math.floor(lifetime / 2) + 1, 3_600_000)).toBe(false)
    // Never once expired, nor for another request.
    expect(await found(expires, 0)).toBe(false)
    expect(Option.isNone(await reuse(created, 0, "k2"))).toBe(true)
    const active = await run(
      Effect.flatMap(Store, (store) =>
        store.listActiveTokens({ connectorId: saved.id, projectId: "prj_web", subject: "app" })
      )
    )
    expect(active.map((t) => t.id)).toEqual([issued.id])
    await run(Effect.flatMap(Store, (store) => store.markTokens([issued.id], "revoked")))
    expect(Option.isNone(await reuse(created, 0))).toBe(true)
  })

  it("prunes issued tokens that expired before a time, and only those", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("prune/acme"))))
    const insert = (expiresAt: number) =>
      run(
        Effect.flatMap(Store, (store) =>
          store.insertIssuedToken({
            connectorId: saved.id,
            projectId: "prj_prune",
            environment: "production",
            subject: "app",
            installationId: "",
            requestKey: `k${expiresAt}`,
            grantId: undefined,
            accessToken: Redacted.make(ACCESS_TOKEN),
            expiresAt
          })
        )
      )
    await insert(1_000)
    await insert(2_000)
    const kept = await insert(3_000)
    expect(await run(Effect.flatMap(Store, (store) => store.pruneIssuedTokens(2_001)))).toBe(2)
    expect(await run(Effect.flatMap(Store, (store) => store.pruneIssuedTokens(2_001)))).toBe(0)
    const left = await run(
      Effect.flatMap(Store, (store) => store.listActiveTokens({ connectorId: saved.id, projectId: "prj_prune" }))
    )
    expect(left.map((token) => token.id)).toEqual([kept.id])
  })

  it("enforces its foreign keys: a link to a project that does not exist is refused", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("fk/acme"))))
    const error = await run(
      Effect.flip(Effect.flatMap(Store, (store) => store.putLink(saved.id, "prj_nowhere", ["production"])))
    )
    expect(error._tag).toBe("StoreError")
  })

  it("removes a connector with everything that hangs off it", async () => {
    const saved = await run(Effect.flatMap(Store, (store) => store.putConnector(connector("gone/acme"))))
    await run(
      Effect.flatMap(Store, (store) =>
        store.putGrant({
          connectorId: saved.id,
          installationId: "",
          subject: "user:u9",
          refreshToken: Redacted.make(REFRESH_TOKEN)
        })
      )
    )
    expect(await run(Effect.flatMap(Store, (store) => store.removeConnector("gone/acme")))).toBe(true)
    expect(await run(Effect.flatMap(Store, (store) => store.removeConnector("gone/acme")))).toBe(false)
    const grants = await run(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ id: string }>`SELECT id FROM grants WHERE connector_id = ${saved.id}`
      )
    )
    expect(grants).toEqual([])
  })

  it("leaves no secret in plain text in the database", async () => {
    // Every row of every table, as the database returns it.
    const tables = ["connectors", "installations", "projects", "project_keys", "links", "grants", "issued_tokens"]
    const dump = JSON.stringify(
      await run(
        Effect.forEach(tables, (table) =>
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT * FROM ${sql(table)}`)
        )
      )
    )
    expect(dump).toContain("acme/api")
    for (const secret of [CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, CALLER_KEY]) expect(dump).not.toContain(secret)
    if (database.file !== undefined) {
      // And the SQLite file itself, once the write-ahead log is folded into it.
      await run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`PRAGMA wal_checkpoint(TRUNCATE)`))
      const bytes = readFileSync(database.file).toString("latin1")
      expect(bytes).toContain("acme/api")
      for (const secret of [CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, CALLER_KEY]) expect(bytes).not.toContain(secret)
    }
  })
})
