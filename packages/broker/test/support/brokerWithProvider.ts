import type { LogLevel } from "effect"
/**
 * A broker wired to the OAuth test provider: the fields of its connectors, its project and links, and the
 * two started together so that the provider knows the broker's callback.
 */
import { freePort, type RunningBroker, startBroker } from "./broker.js"
import type { TestDatabase } from "./databases.js"
import { type OAuthProviderHarness, type OAuthProviderOptions, startOAuthProvider } from "./oauthProvider.js"

/** The fields of a connector declaration that make the provider's `broker` test client an OAuth connector. */
export const oauthClientOf = (provider: OAuthProviderHarness) => ({
  type: "oauth",
  clientId: provider.clients.broker.clientId,
  clientSecret: provider.clients.broker.clientSecret,
  tokenEndpoint: provider.tokenEndpoint
})

/**
 * The `projects` and `links` of a broker configuration: one project with one production caller key, and
 * each of `connectors` linked to it in production.
 */
export const productionProject = (
  project: { readonly id: string; readonly key: string; readonly returnUrls?: ReadonlyArray<string> },
  connectors: ReadonlyArray<string>
) => ({
  projects: [
    {
      id: project.id,
      keys: [{ environment: "production", secret: project.key }],
      ...(project.returnUrls === undefined ? {} : { returnUrls: project.returnUrls })
    }
  ],
  links: connectors.map((connector) => ({ connector, project: project.id, environments: ["production"] }))
})

/**
 * Starts the OAuth test provider, its test clients allowed to redirect to the broker's callback, then the
 * broker on that port with the configuration `config` declares for the running provider. The provider is
 * closed again when the broker does not start.
 */
export const startBrokerWithProvider = async (options: {
  readonly database: TestDatabase
  /** The provider's options; its redirect URIs are the broker's callback. */
  readonly provider?: Omit<OAuthProviderOptions, "redirectUris">
  readonly config: (provider: OAuthProviderHarness) => unknown
  readonly env?: Readonly<Record<string, string>>
  readonly logLevel?: LogLevel.LogLevel
}): Promise<{ readonly provider: OAuthProviderHarness; readonly broker: RunningBroker }> => {
  const port = await freePort()
  const provider = await startOAuthProvider({
    ...options.provider,
    redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`]
  })
  try {
    const broker = await startBroker({
      database: options.database,
      port,
      config: options.config(provider),
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel })
    })
    return { provider, broker }
  } catch (error) {
    await provider.close()
    throw error
  }
}
