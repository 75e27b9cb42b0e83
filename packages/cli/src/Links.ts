/**
 * `connect attach` and `connect detach`: which projects may use a connector,
 * from which environments, through the broker's admin API.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { LinkChanged } from "@effect-connect/broker/AdminApi"
import { Console, Effect, Schema } from "effect"
import * as AdminClient from "./AdminClient.js"
import { fail } from "./Exit.js"

const connectorArg = Args.text({ name: "connector" }).pipe(
  Args.withDescription("The connector's uid or id, e.g. acme/api")
)
const project = Options.text("project").pipe(Options.withDescription("The project's id"))

/** A link after a change, in words. */
export const formatLink = (link: LinkChanged): string =>
  link.environments.length === 0
    ? `Connector ${link.connector} is no longer linked to project ${link.project}`
    : `Connector ${link.connector} is linked to project ${link.project} for: ${link.environments.join(", ")}`

const print = (format: "plain" | "json", link: LinkChanged) =>
  format === "json"
    ? Effect.flatMap(Schema.encode(LinkChanged)(link).pipe(Effect.orDie), (encoded) =>
        Console.log(JSON.stringify(encoded, null, 2))
      )
    : Console.log(formatLink(link))

/**
 * @since 0.1.0
 * @category commands
 */
export const attach = Command.make(
  "attach",
  {
    connector: connectorArg,
    project,
    environments: Options.text("environment").pipe(
      Options.withDescription("An environment the project may use the connector from; repeat for several"),
      Options.repeated
    ),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      if (input.environments.length === 0) {
        return yield* fail("Give at least one --environment (e.g. --environment production)")
      }
      const link = yield* AdminClient.request((client) =>
        client.attach(input.connector, input.project, input.environments)
      )
      return yield* print(input.format, link)
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Lets a project use a connector from the given environments (added to those it has).",
      "",
      "Example: connect attach acme/api --project prj_web --environment production --environment preview"
    ].join("\n")
  )
)

/**
 * @since 0.1.0
 * @category commands
 */
export const detach = Command.make(
  "detach",
  {
    connector: connectorArg,
    project,
    environments: Options.text("environment").pipe(
      Options.withDescription("An environment to take out of the link; repeat for several; none: the whole link"),
      Options.repeated
    ),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      const link = yield* AdminClient.request((client) =>
        client.detach(input.connector, input.project, input.environments.length === 0 ? undefined : input.environments)
      )
      return yield* print(input.format, link)
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Takes environments out of a project's link to a connector, or, without --environment, the whole link.",
      "",
      "Example: connect detach acme/api --project prj_web --environment preview"
    ].join("\n")
  )
)
