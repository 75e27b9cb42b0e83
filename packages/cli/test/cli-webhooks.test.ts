import { randomBytes } from "node:crypto"
import { adminRoutes } from "@effect-connect/broker/AdminApi"
import { type Method, type Route, routes } from "effect-connect/Protocol"
import { Webhook } from "standardwebhooks"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningBroker, startBroker } from "../../broker/test/support/broker.js"
import { oauthClientOf } from "../../broker/test/support/brokerWithProvider.js"
import { cleanEnv, failsWithOneLine, type Run, sleep } from "../../broker/test/support/cli.js"
import { sqlite, type TestDatabase } from "../../broker/test/support/databases.js"
import { adminRequest, sendJson } from "../../broker/test/support/http.js"
import { type OAuthProviderHarness, startOAuthProvider } from "../../broker/test/support/oauthProvider.js"
import { startReceiver, type WebhookReceiver, webhookHeaders } from "../../broker/test/support/webhookReceiver.js"
import { runInProcessPrintingNone } from "./support/inProcess.js"

const ADMIN_TOKEN = "adm_cli_webhooks_token_4471"

const oneLine = (text: string) => text.trim().split("\n")

interface DeliveryJson {
  readonly id: string
  readonly status: string
  readonly attempts: number
  readonly eventKind: string
  readonly attemptLog: ReadonlyArray<{ readonly status?: number; readonly error?: string }>
}

// Every command runs in the test's process (a process of its own costs about a second on a busy machine). Each test
// makes the project (and connector) it needs over the admin API, under names no other test uses, so the tests pass in any order.
describe("connect webhooks", { timeout: 90_000 }, () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>
  const receivers: Array<WebhookReceiver> = []
  /** Secrets no run may print, beyond the admin token (the webhooks' secrets, once created). */
  const secrets: Array<string> = []

  /** Runs `connect` with `args`; every run is checked as it ends: no admin token, no webhook secret (unless `shows`). */
  const connectShowing = (shows: string | undefined, ...args: ReadonlyArray<string>): Promise<Run> =>
    runInProcessPrintingNone(
      [ADMIN_TOKEN, ...secrets].filter((secret) => secret !== shows),
      args,
      env
    )
  const connect = (...args: ReadonlyArray<string>): Promise<Run> => connectShowing(undefined, ...args)

  /** A call of the admin API over HTTP with the admin token; its JSON answer. */
  const admin = <P extends `/${string}`>(
    route: Route<Method, P>,
    params: Parameters<Route<Method, P>["path"]>[0],
    body?: unknown
  ): Promise<unknown> => adminRequest(broker.url, ADMIN_TOKEN, route, params, body)
  const createProject = (id: string) => admin(adminRoutes.createProject, {}, { id })
  const receiver = async () => {
    const started = await startReceiver()
    receivers.push(started)
    return started
  }
  /** A webhook of `project` made over the admin API (not by the command under test); its id and secret. */
  const createWebhook = async (project: string, url: string) => {
    const created = (await admin(adminRoutes.createWebhook, { project }, { url })) as { id: string; secret: string }
    secrets.push(created.secret)
    return created
  }
  /** The deliveries of `webhook` as `connect webhooks deliveries --format json` prints them. */
  const deliveriesOf = async (webhook: string): Promise<ReadonlyArray<DeliveryJson>> => {
    const listed = await connect("webhooks", "deliveries", webhook, "--format", "json")
    expect(listed.code).toBe(0)
    return (JSON.parse(listed.stdout) as { deliveries: ReadonlyArray<DeliveryJson> }).deliveries
  }
  /** Polls the deliveries (over HTTP, no process) until the newest has `status` after `attempts` attempts or more. */
  const waitForDelivery = async (webhook: string, status: string, attempts = 1) => {
    for (let i = 0; i < 300; i++) {
      const answer = (await admin(adminRoutes.listDeliveries, { webhook })) as { deliveries: Array<DeliveryJson> }
      const [newest] = answer.deliveries
      if (newest?.status === status && newest.attempts >= attempts) return newest
      await sleep(50)
    }
    throw new Error(`no ${status} delivery of ${webhook}`)
  }

  beforeAll(async () => {
    provider = await startOAuthProvider({ clientCredentialsTtl: 3600 })
    database = sqlite()
    broker = await startBroker({
      database,
      config: {},
      env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN, CONNECT_WEBHOOK_POLL_MS: "100" }
    })
    env = { ...cleanEnv(), CONNECT_URL: broker.url, CONNECT_ADMIN_TOKEN: ADMIN_TOKEN }
  }, 60_000)
  afterAll(async () => {
    for (const started of receivers) await started.close()
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("create generates a secret and prints it once (plain and json); list never shows it", async () => {
    await createProject("prj_wh_create")
    const target = await receiver()
    const plain = await connect("webhooks", "create", "--project", "prj_wh_create", "--event", "token.*", target.url)
    expect(plain.code).toBe(0)
    const [created, secretLine] = oneLine(plain.stdout)
    const id = created?.match(/^Created webhook (\S+)$/)?.[1]
    const secret = secretLine?.match(/^Secret: (whsec_\S+)$/)?.[1]
    if (id === undefined || secret === undefined) throw new Error(`unexpected output: ${plain.stdout}`)
    expect(plain.stderr).toContain("shown only now")
    secrets.push(secret)
    // The secret printed is the one the broker signs with: it verifies a delivery (below, in `deliveries`) and is
    // a Standard Webhooks secret.
    expect(() => new Webhook(secret)).not.toThrow()

    const json = await connect(
      "webhooks",
      "create",
      "--project",
      "prj_wh_create",
      "--format",
      "json",
      `${target.url}/json`
    )
    expect(json.code).toBe(0)
    const body = JSON.parse(json.stdout) as { id: string; secret: string; url: string; events: Array<string> }
    expect(body).toMatchObject({ url: `${target.url}/json`, events: [], enabled: true, source: "api" })
    expect(body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/)
    expect(body.secret).not.toBe(secret)
    secrets.push(body.secret)

    const table = await connect("webhooks", "list", "--project", "prj_wh_create")
    expect(table.code).toBe(0)
    const lines = oneLine(table.stdout)
    expect(lines[0]?.split(/\s{2,}/)).toEqual(["ID", "URL", "EVENTS", "ENABLED", "SOURCE", "CREATED"])
    expect(lines).toHaveLength(3)
    expect(table.stdout).toContain(id)
    expect(table.stdout).toContain(body.id)
    expect(table.stdout).toMatch(new RegExp(`${id}\\s+${target.url}\\s+token\\.\\*\\s+yes\\s+api\\s`))
    const listed = await connect("webhooks", "list", "--project", "prj_wh_create", "--format", "json")
    expect(listed.code).toBe(0)
    const views = (JSON.parse(listed.stdout) as { webhooks: Array<Record<string, unknown>> }).webhooks
    expect(views.map((view) => view.id).sort()).toEqual([id, body.id].sort())
    expect(views.every((view) => !("secret" in view))).toBe(true)
  })

  it("create takes a secret given with --secret, and shows it back only in that output", async () => {
    await createProject("prj_wh_given")
    const target = await receiver()
    const given = `whsec_${randomBytes(32).toString("base64")}`
    secrets.push(given)
    const created = await connectShowing(
      given,
      "webhooks",
      "create",
      "--project",
      "prj_wh_given",
      "--secret",
      given,
      target.url
    )
    expect(created.code).toBe(0)
    expect(created.stdout).toContain(`Secret: ${given}\n`)
    const listed = await connect("webhooks", "list", "--project", "prj_wh_given", "--format", "json")
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout).webhooks).toHaveLength(1)
  })

  it("create refuses a bad URL, a bad secret and an unknown project with one line and exit code 2", async () => {
    await createProject("prj_wh_bad")
    const badUrl = await connect("webhooks", "create", "--project", "prj_wh_bad", "http://hooks.example.com/in")
    failsWithOneLine(badUrl)
    expect(badUrl.stderr).toContain("url")
    const notUrl = await connect("webhooks", "create", "--project", "prj_wh_bad", "not a url")
    failsWithOneLine(notUrl)
    expect(notUrl.stderr).toContain("url")
    const badSecret = await connect(
      "webhooks",
      "create",
      "--project",
      "prj_wh_bad",
      "--secret",
      "whsec_short",
      "https://hooks.example.com/in"
    )
    failsWithOneLine(badSecret)
    expect(badSecret.stderr).toContain("secret")
    expect(badSecret.stderr).not.toContain("whsec_short")
    const noProject = await connect("webhooks", "create", "--project", "prj_wh_nope", "https://hooks.example.com/in")
    failsWithOneLine(noProject)
    expect(noProject.stderr).toContain("prj_wh_nope")
    expect(await admin(adminRoutes.listWebhooks, { project: "prj_wh_bad" })).toEqual({ webhooks: [] })
  })

  it("deliveries shows the attempts of an event's delivery; retry sends it again; remove removes the webhook", async () => {
    await admin(
      adminRoutes.createConnector,
      {},
      { uid: "acme/hooked", name: "acme/hooked", ...oauthClientOf(provider) }
    )
    await createProject("prj_wh_deliver")
    const key = (
      (await admin(adminRoutes.createKey, { project: "prj_wh_deliver" }, { environment: "production" })) as {
        key: string
      }
    ).key
    await admin(
      adminRoutes.attach,
      { connector: "acme/hooked", project: "prj_wh_deliver" },
      { environments: ["production"] }
    )
    const target = await receiver()
    // 503 until the test opens it: the scheduled retries fail, only the one `retry` asks for succeeds.
    let open = false
    target.answer = () => (open ? 200 : 503)
    const hook = await createWebhook("prj_wh_deliver", target.url)
    const none = await connect("webhooks", "deliveries", hook.id)
    expect(none).toMatchObject({ code: 0, stdout: `No deliveries for ${hook.id}.\n` })

    // An event of the project: a token issued through the broker.
    const issued = await sendJson(
      "POST",
      `${broker.url}${routes.token.path({ connector: "acme/hooked" })}`,
      { subject: { type: "app" } },
      key
    )
    expect(issued.status).toBe(200)
    await target.waitFor(1)
    const failed = await waitForDelivery(hook.id, "pending")

    const [pending, ...others] = await deliveriesOf(hook.id)
    expect(others).toEqual([])
    expect(pending).toMatchObject({ id: failed.id, status: "pending", eventKind: "token.issued" })
    // The second attempt may have happened by now (after 5 seconds, on a busy machine).
    expect(pending?.attemptLog[0]).toMatchObject({ status: 503, error: "failure 0" })
    expect(pending?.attemptLog.map((attempt) => attempt.status)).toEqual(
      Array.from({ length: pending?.attempts ?? 0 }, () => 503)
    )
    const table = await connect("webhooks", "deliveries", hook.id, "--status", "pending")
    expect(table.code).toBe(0)
    expect(oneLine(table.stdout)[1]).toMatch(
      new RegExp(`^${failed.id}\\s+\\S+\\s+token\\.issued\\s+pending\\s+\\d\\s+HTTP 503\\s`)
    )

    // The second attempt (after about 5 seconds) fails too; the third would be about 30 seconds later: `retry`
    // makes it due now.
    await waitForDelivery(hook.id, "pending", 2)
    open = true
    const retried = await connect("webhooks", "retry", failed.id)
    expect(retried).toMatchObject({ code: 0, stdout: `Delivery ${failed.id} will be sent again now\n` })
    await target.waitFor(3, 3_000)
    await waitForDelivery(hook.id, "delivered")
    const [delivered] = await deliveriesOf(hook.id)
    expect(delivered?.attemptLog.map((attempt) => attempt.status)).toEqual([503, 503, 200])
    const third = target.receipts[2]
    if (third === undefined) throw new Error("no third receipt")
    expect(new Webhook(hook.secret).verify(third.body, webhookHeaders(third))).toMatchObject({
      type: "token.issued",
      data: { project: "prj_wh_deliver", connector: "acme/hooked" }
    })

    const removed = await connect("webhooks", "remove", "--project", "prj_wh_deliver", hook.id)
    expect(removed).toMatchObject({ code: 0, stdout: `Removed webhook ${hook.id} of prj_wh_deliver\n` })
    const empty = await connect("webhooks", "list", "--project", "prj_wh_deliver")
    expect(empty).toMatchObject({ code: 0, stdout: "No webhooks in prj_wh_deliver.\n" })
  })

  it("an unknown webhook or delivery fails with one line naming it and exit code 2", async () => {
    await createProject("prj_wh_unknown")
    const removed = await connect("webhooks", "remove", "--project", "prj_wh_unknown", "wh_nope_1")
    failsWithOneLine(removed)
    expect(removed.stderr).toContain("wh_nope_1")
    const deliveries = await connect("webhooks", "deliveries", "wh_nope_2")
    failsWithOneLine(deliveries)
    expect(deliveries.stderr).toContain("wh_nope_2")
    const retried = await connect("webhooks", "retry", "whd_nope_3")
    failsWithOneLine(retried)
    expect(retried.stderr).toContain("whd_nope_3")
  })
})
