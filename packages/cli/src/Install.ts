/**
 * `connect install <connector>`: starts an installation of a connector for a
 * tenant (a Slack workspace, a GitHub organization, an Entra directory), shows
 * the link its admin opens (and opens it in the browser on a terminal), then
 * waits until the installation is made, refused, or the link expires.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import { Effect, Option } from "effect"
import { ConnectClient } from "effect-connect/ConnectClient"
import * as Connection from "./Connection.js"
import { awaitConsent, expiresInOption, noOpenOption, reportOutcome } from "./Consent.js"
import { ExitCode, exitOnInterrupt, report } from "./Exit.js"
import * as Flags from "./Flags.js"
import { splitScopes } from "./Token.js"

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "install",
  {
    connector: Flags.connector("The connector, e.g. slack/acme"),
    tenantId: Flags.optionalText(
      "tenant-id",
      "The tenant to install for, when the connector's install link is per tenant"
    ),
    scopes: Flags.optionalText(
      "scopes",
      "The app scopes, separated by commas or spaces (default: the connector's app scopes)"
    ),
    expiresIn: expiresInOption,
    noOpen: noOpenOption,
    format: Flags.format("plain: one line when installed; json: {request, status, connector, installationId}"),
    ...Connection.options
  },
  (input) =>
    Effect.gen(function* () {
      const client = yield* ConnectClient
      const scopes = Option.map(input.scopes, splitScopes)
      const started = yield* client
        .startInstallation(input.connector, {
          ...Flags.field("tenantId", input.tenantId),
          ...Flags.nonEmptyField("scopes", scopes),
          ...Flags.field("expiresInMs", input.expiresIn)
        })
        .pipe(Effect.catchAll(report))
      const connector = started.connector?.uid ?? input.connector
      const outcome = yield* awaitConsent(started, {
        expiresInMs: input.expiresIn,
        noOpen: input.noOpen,
        intro: `To install connector "${connector}", an admin of the tenant opens this URL in a browser:`,
        waiting: "for the admin to install it"
      })
      return yield* reportOutcome(outcome, {
        format: input.format,
        fields: { connector, installationId: outcome.installationId },
        completed: `Installed: connector "${connector}" for installation "${outcome.installationId ?? "(unnamed)"}".`,
        what: "installation"
      })
    }).pipe(Effect.provide(Connection.clientLayer(input)), exitOnInterrupt(ExitCode.Interrupted))
).pipe(
  Command.withDescription(
    [
      "Installs a connector for a tenant: prints the URL its admin opens (and opens it in the browser on a",
      "terminal), then waits until the installation is made, refused, or the link expires.",
      "Exit codes: 0 installed (the installation id is printed); 2 refused, failed or expired, or any other",
      "failure; 130 stopped with Ctrl+C.",
      "",
      "Example: connect install slack/acme",
      "Example: connect install microsoft/graph --tenant-id 72f988bf-86f1-41af-91ab-2d7cd011db47 --format json"
    ].join("\n")
  )
)
