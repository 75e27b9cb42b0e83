import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer as createNetServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { ConfigProvider, Effect, FiberRef, Layer, Logger, LogLevel, ManagedRuntime, Redacted } from "effect"
import { ConnectClient, TokenCache } from "effect-connect"
import { layerNodeServer, layerServices } from "../../src/Broker.js"
import { generateKey } from "../../src/Cipher.js"
import * as SlicedScheduler from "../../src/internal/slicedScheduler.js"
import { app } from "../../src/Routes.js"
import type { TestDatabase } from "./databases.js"

/** A broker serving on 127.0.0.1 (a free port) inside the test process. */
export interface RunningBroker {
  readonly url: string
  readonly close: () => Promise<void>
}

/** A port free on 127.0.0.1 right now, for a broker whose URL must be known before it starts. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      probe.close(() => resolve(port))
    })
  })

/**
 * What an in-process broker logs: warnings and errors, unless
 * `CONNECT_TEST_LOG_LEVEL` asks for more (`info`, `debug`, `all`).
 */
const testLogLevel =
  LogLevel.allLevels.find(
    (level) => level._tag.toLowerCase() === (process.env.CONNECT_TEST_LOG_LEVEL ?? "warning").toLowerCase()
  ) ?? LogLevel.Warning

/**
 * Starts a broker as `npm run broker` would, with its environment given here
 * instead of the process's: the configuration file is written to a temporary
 * file and named by CONNECT_CONFIG.
 */
export const startBroker = async (options: {
  readonly database: TestDatabase
  readonly config: unknown
  readonly env?: Readonly<Record<string, string>>
  readonly encryptionKey?: string
  /** Listen on this port (default: any free one); its URL is the broker's public URL. */
  readonly port?: number
  /** What the broker logs (default: warnings and errors, or `CONNECT_TEST_LOG_LEVEL`). */
  readonly logLevel?: LogLevel.LogLevel
}): Promise<RunningBroker> => {
  const port = options.port ?? 0
  const directory = mkdtempSync(join(tmpdir(), "connect-broker-"))
  const configFile = join(directory, "connect.json")
  writeFileSync(configFile, JSON.stringify(options.config))
  const location = options.database.location
  const env = new Map<string, string>([
    ["CONNECT_CONFIG", configFile],
    ["CONNECT_DATA_DIR", directory],
    ["CONNECT_ENCRYPTION_KEY", options.encryptionKey ?? Buffer.from(generateKey()).toString("base64")],
    ["CONNECT_DATABASE_URL", location._tag === "Sqlite" ? location.filename : Redacted.value(location.url)],
    ...(port === 0 ? [] : ([["CONNECT_PUBLIC_URL", `http://127.0.0.1:${port}`]] as const)),
    ...Object.entries(options.env ?? {})
  ])
  // The server as the broker runs it: the token endpoint's fast path in front of the app.
  const layer = HttpServer.serve(app).pipe(
    Layer.provideMerge(layerNodeServer({ port, host: "127.0.0.1" })),
    Layer.provide(layerServices),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env))),
    Layer.provide(Logger.minimumLogLevel(options.logLevel ?? testLogLevel))
  )
  // With the broker's own scheduler, as `Broker.serve` and `connect serve` run it.
  const runtime = ManagedRuntime.make(Layer.locally(layer, FiberRef.currentScheduler, SlicedScheduler.make()))
  const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (server) => server.address))
  if (address._tag !== "TcpAddress") throw new Error("the broker did not listen on TCP")
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await runtime.dispose()
      rmSync(directory, { recursive: true, force: true })
    }
  }
}

/** Encryption keys as the broker takes them. */
export const newEncryptionKey = (): string => Buffer.from(generateKey()).toString("base64")

/** The SDK (`ConnectClient` with its own cache, over fetch) for a broker and a caller key; no retries, so failures show at once. */
export const sdkClient = (broker: RunningBroker, key: string) =>
  ConnectClient.layer({ baseUrl: broker.url, token: Redacted.make(key), retries: 0 }).pipe(
    Layer.provideMerge(Layer.merge(TokenCache.layer(), FetchHttpClient.layer)),
    Layer.orDie
  )
