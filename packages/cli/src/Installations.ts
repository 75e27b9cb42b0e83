/**
 * `connect installations list|remove`: a connector's installations (tenants),
 * through the broker's admin API.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { InstallationList, InstallationRemoved } from "@effect-connect/broker/AdminApi"
import { Console, Effect, Schema } from "effect"
import * as AdminClient from "./AdminClient.js"
import { confirm } from "./Exit.js"
import { table } from "./Table.js"

const connectorArg = Args.text({ name: "connector" }).pipe(
  Args.withDescription("The connector's uid or id, e.g. slack/acme")
)

const json = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

/** What removing an installation did, in words. */
export const formatRemoval = (removed: InstallationRemoved): string =>
  [
    `Removed installation ${removed.installationId}`,
    `tokens found: ${removed.tokensFound}, grants found: ${removed.grantsFound}`,
    `revoked at the provider: ${removed.providerRevoked}, skipped: ${removed.providerSkipped}, failed: ${removed.providerFailed}`
  ].join("\n")

const list = Command.make("list", { connector: connectorArg, ...AdminClient.options }, (input) =>
  Effect.gen(function* () {
    const answer = yield* AdminClient.request((client) => client.listInstallations(input.connector))
    if (input.format === "json") return yield* json(yield* Schema.encode(InstallationList)(answer).pipe(Effect.orDie))
    if (answer.installations.length === 0) {
      return yield* Console.log(`Connector ${input.connector} has no installations.`)
    }
    return yield* Console.log(
      table([
        ["ID", "TENANT", "DEFAULT", "SOURCE"],
        ...answer.installations.map((i) => [i.id, i.tenantId ?? "-", i.default ? "yes" : "no", i.source])
      ])
    )
  }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Lists a connector's installations: declared in the configuration file, or made by a tenant's admin.",
      "",
      "Example: connect installations list slack/acme"
    ].join("\n")
  )
)

const remove = Command.make(
  "remove",
  {
    connector: connectorArg,
    installation: Args.text({ name: "installation" }).pipe(Args.withDescription("The installation's id, e.g. T0123")),
    yes: Options.boolean("yes").pipe(Options.withDescription("Do not ask for confirmation")),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      yield* confirm({
        yes: input.yes,
        verb: "Remove",
        done: "removed",
        what: `installation "${input.installation}" of connector "${input.connector}" (its tokens and grants are revoked at the provider)`
      })
      const removed = yield* AdminClient.request((client) =>
        client.removeInstallation(input.connector, input.installation)
      )
      if (input.format === "json")
        return yield* json(yield* Schema.encode(InstallationRemoved)(removed).pipe(Effect.orDie))
      return yield* Console.log(formatRemoval(removed))
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Removes an installation: revokes every token and grant made within it at the provider, then deletes it.",
      "The tenant must install the connector again. Asks for confirmation on a terminal; elsewhere pass --yes.",
      "",
      "Example: connect installations remove slack/acme T0123 --yes"
    ].join("\n")
  )
)

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("installations").pipe(
  Command.withDescription(
    [
      "Lists and removes a connector's installations (admin API: CONNECT_URL, CONNECT_ADMIN_TOKEN).",
      "",
      "Example: connect installations list slack/acme"
    ].join("\n")
  ),
  Command.withSubcommands([list, remove])
)
