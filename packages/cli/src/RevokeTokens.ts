/**
 * `connect revoke-tokens <connector>`: revokes issued tokens of a user, or all
 * of the connector's tokens, after a confirmation.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Option } from "effect"
import { ConnectClient } from "effect-connect/ConnectClient"
import type { RevocationSummary } from "effect-connect/Revocation"
import * as Connection from "./Connection.js"
import { confirm, fail, report } from "./Exit.js"
import * as Flags from "./Flags.js"

/** The summary, one line per count. */
export const formatSummary = (summary: RevocationSummary): string =>
  [
    `tokens found: ${summary.tokensFound}`,
    `deleted: ${summary.deleted}`,
    `revoked at the provider: ${summary.providerRevoked}`,
    `not revocable at the provider: ${summary.providerSkipped}`,
    `failed at the provider: ${summary.providerFailed}`
  ].join("\n")

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "revoke-tokens",
  {
    connector: Args.text({ name: "connector" }).pipe(Args.withDescription("The connector, e.g. acme/api")),
    userId: Options.text("user-id").pipe(Options.withDescription("Revoke this user's tokens"), Options.optional),
    allTokens: Options.boolean("all-tokens").pipe(
      Options.withDescription("Revoke every token of the connector for your project")
    ),
    installationId: Options.text("installation-id").pipe(
      Options.withDescription("Only the tokens of this installation"),
      Options.optional
    ),
    yes: Options.boolean("yes").pipe(Options.withDescription("Do not ask for confirmation")),
    format: Options.choice("format", ["plain", "json"]).pipe(
      Options.withDescription("plain: one line per count; json: the summary as JSON"),
      Flags.withDefault("plain")
    ),
    ...Connection.options
  },
  (input) =>
    Effect.gen(function* () {
      const userId = Option.getOrUndefined(input.userId)
      if ((userId === undefined) === !input.allTokens) {
        return yield* fail("Give exactly one of --user-id <id> and --all-tokens")
      }
      const installationId = Option.getOrUndefined(input.installationId)
      const what = `${userId === undefined ? "every token" : `the tokens of user "${userId}"`} of connector "${input.connector}"${installationId === undefined ? "" : ` (installation ${installationId})`}`
      yield* confirm({ yes: input.yes, verb: "Revoke", done: "revoked", what })
      const client = yield* ConnectClient
      const summary = yield* client
        .revokeToken(input.connector, {
          ...(userId === undefined ? {} : { subject: { type: "user", id: userId } }),
          ...(installationId === undefined ? {} : { installationId })
        })
        .pipe(Effect.catchAll(report))
      yield* Console.log(input.format === "json" ? JSON.stringify(summary, null, 2) : formatSummary(summary))
    }).pipe(Effect.provide(Connection.clientLayer(input)))
).pipe(
  Command.withDescription(
    [
      "Revokes issued tokens: a user's (--user-id) or all of the connector's (--all-tokens).",
      "Asks for confirmation on a terminal; elsewhere pass --yes.",
      "",
      "Example: connect revoke-tokens acme/api --user-id ada --yes"
    ].join("\n")
  )
)
