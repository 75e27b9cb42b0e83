/**
 * `connect authorize <connector> --user-id <id>`: starts a user's
 * authorization, shows the link to open (and opens it in the browser on a
 * terminal), then waits until the user has connected their account, refused,
 * or let the request expire.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { ConnectClient } from "effect-connect/ConnectClient"
import * as Connection from "./Connection.js"
import { awaitConsent, expiresInOption, noOpenOption, reportOutcome } from "./Consent.js"
import { ExitCode, exitOnInterrupt, report } from "./Exit.js"
import * as Flags from "./Flags.js"
import { resourcesOption, scopesOption, splitScopes } from "./Token.js"

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "authorize",
  {
    connector: Flags.connector(),
    userId: Options.text("user-id").pipe(Options.withDescription("The user who connects their account (required)")),
    installationId: Flags.optionalText("installation-id", "The installation (tenant) to authorize for"),
    scopes: scopesOption,
    resources: resourcesOption,
    prompt: Flags.optionalText("prompt", "The provider's prompt, e.g. consent to ask the user again"),
    expiresIn: expiresInOption,
    device: Options.boolean("device").pipe(
      Options.withDescription("Use the device flow: the user enters a code shown here (if the server offers it)")
    ),
    noOpen: noOpenOption,
    format: Flags.format("plain: one line when connected; json: {request, status, connector, userId}"),
    ...Connection.options
  },
  (input) =>
    Effect.gen(function* () {
      const client = yield* ConnectClient
      const scopes = Option.map(input.scopes, splitScopes)
      const started = yield* client
        .startAuthorization(
          input.connector,
          {
            subject: { type: "user", id: input.userId },
            ...Flags.field("installationId", input.installationId),
            ...Flags.nonEmptyField("scopes", scopes),
            ...Flags.nonEmptyField("resources", input.resources)
          },
          {
            ...(input.device ? { deviceCode: true } : {}),
            ...Flags.field("expiresInMs", input.expiresIn),
            ...Flags.field("prompt", input.prompt)
          }
        )
        .pipe(Effect.catchAll(report))
      const connector = started.connector?.uid ?? input.connector
      const outcome = yield* awaitConsent(started, {
        expiresInMs: input.expiresIn,
        noOpen: input.noOpen,
        intro: `To connect user "${input.userId}" to connector "${connector}", open this URL in a browser:`,
        waiting: "for the user to authorize in the browser"
      })

      return yield* reportOutcome(outcome, {
        format: input.format,
        fields: { connector, userId: input.userId },
        completed: `Connected: user "${input.userId}" authorized connector "${connector}".`,
        what: "authorization"
      })
    }).pipe(
      Effect.provide(Connection.clientLayer(input)),
      // Nothing was connected: say so in the exit code.
      exitOnInterrupt(ExitCode.Interrupted)
    )
).pipe(
  Command.withDescription(
    [
      "Connects a user's account: prints the URL to open (and opens it in the browser on a terminal),",
      "then waits until the user has authorized the connector, refused, or let the link expire.",
      "Exit codes: 0 connected; 2 refused, failed or expired (one line says why), or any other failure;",
      "1 the connector must be installed first; 3 the project confirms its users and the application has yet to;",
      "130 stopped with Ctrl+C.",
      "",
      "Example: connect authorize acme/api --user-id ada --scopes api:read",
      "Example: connect authorize acme/api --user-id ada --no-open --expires-in 5 --format json"
    ].join("\n")
  )
)
