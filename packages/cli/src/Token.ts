/**
 * `connect token <connector>`: gets a short-lived provider token and prints it.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Option, Redacted, Schema } from "effect"
import { ConnectClient } from "effect-connect/ConnectClient"
import type { Subject } from "effect-connect/Subject"
import { TokenResponse } from "effect-connect/Token"
import * as Connection from "./Connection.js"
import { fail, report } from "./Exit.js"
import * as Flags from "./Flags.js"

/** Scopes written with commas, spaces or both. */
export const splitScopes = (text: string): ReadonlyArray<string> => text.split(/[\s,]+/).filter((s) => s.length > 0)

/**
 * `--scopes`, split with {@link splitScopes}.
 *
 * @since 0.1.0
 * @category options
 */
export const scopesOption = Options.text("scopes").pipe(
  Options.withDescription('The scopes, separated by commas or spaces: "api:read,api:write"'),
  Options.optional
)

/**
 * `--resource`, repeatable.
 *
 * @since 0.1.0
 * @category options
 */
export const resourcesOption = Options.text("resource").pipe(
  Options.withDescription("A resource indicator (RFC 8707); repeat for several"),
  Options.repeated
)

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "token",
  {
    connector: Flags.connector(),
    subject: Options.choice("subject", ["app", "user"]).pipe(
      Options.withDescription("Whose token: the app's own, or a user's (needs --user-id)"),
      Flags.withDefault("user")
    ),
    userId: Flags.optionalText("user-id", "The user, with --subject user"),
    installationId: Flags.optionalText("installation-id", "The installation (tenant) to use"),
    scopes: scopesOption,
    resources: resourcesOption,
    audiences: Options.text("audience").pipe(
      Options.withDescription("An audience; repeat for several"),
      Options.repeated
    ),
    format: Flags.format("plain: the token alone and a newline; json: the whole response, token included"),
    ...Connection.options
  },
  (input) =>
    Effect.gen(function* () {
      const userId = Option.getOrUndefined(input.userId)
      if (input.subject === "user" && userId === undefined) {
        return yield* fail(
          "--user-id is required with --subject user (the default); use --subject app for an app token"
        )
      }
      if (input.subject === "app" && userId !== undefined) {
        return yield* fail("--user-id goes with --subject user, not --subject app")
      }
      const subject: Subject = userId === undefined ? { type: "app" } : { type: "user", id: userId }
      const scopes = Option.map(input.scopes, splitScopes)
      const client = yield* ConnectClient
      const response = yield* client
        .getTokenResponse(input.connector, {
          subject,
          ...Flags.field("installationId", input.installationId),
          ...Flags.nonEmptyField("scopes", scopes),
          ...Flags.nonEmptyField("resources", input.resources),
          ...Flags.nonEmptyField("audience", input.audiences)
        })
        .pipe(Effect.catchAll(report))
      if (input.format === "plain") {
        return yield* Console.log(Redacted.value(response.token))
      }
      const encoded = yield* Schema.encode(TokenResponse)(response).pipe(Effect.catchAll(report))
      return yield* Console.log(JSON.stringify(encoded, null, 2))
    }).pipe(Effect.provide(Connection.clientLayer(input)))
).pipe(
  Command.withDescription(
    [
      "Gets a short-lived provider token and prints it.",
      "",
      "Example: connect token acme/api --subject app --scopes api:read",
      'Example: export TOKEN="$(connect token github --user-id ada)"'
    ].join("\n")
  )
)
