/**
 * Which installation a request is for: the one it names, none for
 * cross-installation (`"*"`), or the connector's default; and how that is
 * stored.
 *
 * @since 0.2.0
 */
import { Effect, Option } from "effect"
import { ConnectorInstallationRequired, InvalidRequest } from "effect-connect/ConnectError"
import type { Connector, Installation, StoreService } from "../Store.js"

/**
 * The installation a request is for, or the error that says which is needed.
 *
 * @since 0.2.0
 * @category utils
 */
export const resolveInstallation = (store: StoreService, connector: Connector, requested: string | undefined) =>
  Effect.gen(function* () {
    const installations = yield* store.listInstallations(connector.id)
    if (requested === "*") {
      if (!connector.settings.crossInstallation) {
        return yield* new InvalidRequest({
          connector: connector.uid,
          status: 400,
          issues: [
            { path: "installationId", message: `connector "${connector.uid}" offers no cross-installation tokens` }
          ]
        })
      }
      return Option.none<Installation>()
    }
    if (requested !== undefined) {
      const found = installations.find((installation) => installation.id === requested)
      if (found === undefined) {
        return yield* new ConnectorInstallationRequired({
          connector: connector.uid,
          detail: `no installation "${requested}"`
        })
      }
      return Option.some(found)
    }
    const fallback = installations.find((installation) => installation.isDefault)
    if (fallback === undefined && connector.settings.installationsRequired) {
      return yield* new ConnectorInstallationRequired({ connector: connector.uid })
    }
    return Option.fromNullable(fallback)
  })

/**
 * How an installation is stored: its id, `"*"` for cross-installation, `""` for none.
 *
 * @since 0.2.0
 * @category utils
 */
export const installationKey = (installation: Option.Option<Installation>, requested: string | undefined): string =>
  Option.match(installation, { onNone: () => (requested === "*" ? "*" : ""), onSome: (i) => i.id })

/**
 * The installation a request resolves to, as stored (`""` for none).
 *
 * @since 0.2.0
 * @category utils
 */
export const installationOf = (store: StoreService, connector: Connector, requested: string | undefined) =>
  Effect.map(resolveInstallation(store, connector, requested), (installation) =>
    installationKey(installation, requested)
  )
