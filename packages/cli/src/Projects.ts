/**
 * `connect projects list|create` and `connect keys create`: the broker's
 * projects and their caller keys, through its admin API. A new key is printed
 * once: the broker keeps only its hash.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { CreatedKey, ProjectList, ProjectView } from "@effect-connect/broker/AdminApi"
import { Console, Effect, Option, Redacted, Schema } from "effect"
import * as AdminClient from "./AdminClient.js"
import { isoTime, table } from "./Table.js"

const json = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

const keyCounts = (project: ProjectView): string =>
  project.keys.length === 0 ? "none" : project.keys.map((key) => `${key.environment}:${key.count}`).join(" ")

const list = Command.make("list", { ...AdminClient.options }, (input) =>
  Effect.gen(function* () {
    const answer = yield* AdminClient.request((client) => client.listProjects)
    if (input.format === "json") return yield* json(yield* Schema.encode(ProjectList)(answer).pipe(Effect.orDie))
    if (answer.projects.length === 0) return yield* Console.log("No projects.")
    return yield* Console.log(
      table([
        ["ID", "NAME", "KEYS", "CREATED"],
        ...answer.projects.map((project) => [project.id, project.name, keyCounts(project), isoTime(project.createdAt)])
      ])
    )
  }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Lists the broker's projects, with how many caller keys each has per environment.",
      "",
      "Example: connect projects list"
    ].join("\n")
  )
)

const create = Command.make(
  "create",
  {
    id: Args.text({ name: "id" }).pipe(Args.withDescription("The project's id, e.g. prj_web")),
    name: Options.text("name").pipe(Options.withDescription("A name for people (default: the id)"), Options.optional),
    returnUrls: Options.text("return-url").pipe(
      Options.withDescription("Where an authorization may send the user back to; repeat for several"),
      Options.repeated
    ),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      const project = yield* AdminClient.request((client) =>
        client.createProject({
          id: input.id,
          ...(Option.isSome(input.name) ? { name: input.name.value } : {}),
          ...(input.returnUrls.length > 0 ? { returnUrls: input.returnUrls } : {})
        })
      )
      if (input.format === "json") return yield* json(yield* Schema.encode(ProjectView)(project).pipe(Effect.orDie))
      return yield* Console.log(`Created project ${project.id}`)
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Creates a project: an application that calls the broker with caller keys.",
      "",
      "Example: connect projects create prj_web --name Web --return-url https://app.example/connected"
    ].join("\n")
  )
)

/**
 * @since 0.1.0
 * @category commands
 */
export const projects = Command.make("projects").pipe(
  Command.withDescription(
    [
      "Lists and creates the broker's projects (admin API: CONNECT_URL, CONNECT_ADMIN_TOKEN).",
      "",
      "Example: connect projects create prj_web"
    ].join("\n")
  ),
  Command.withSubcommands([list, create])
)

const createKey = Command.make(
  "create",
  {
    project: Options.text("project").pipe(Options.withDescription("The project's id")),
    environment: Options.text("environment").pipe(
      Options.withDescription("The environment the key calls from, e.g. production")
    ),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      const created = yield* AdminClient.request((client) => client.createKey(input.project, input.environment))
      yield* Console.log(
        input.format === "json"
          ? JSON.stringify(yield* Schema.encode(CreatedKey)(created).pipe(Effect.orDie), null, 2)
          : Redacted.value(created.key)
      )
      yield* Console.error(
        `This key of project ${created.project} (${created.environment}) is shown only now: the broker keeps only its hash.`
      )
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Creates a caller key for a project and environment, and prints it once (the broker keeps only its hash).",
      "",
      "Example: connect keys create --project prj_web --environment production --format json",
      'Example: CONNECT_TOKEN="$(connect keys create --project prj_web --environment production)"'
    ].join("\n")
  )
)

/**
 * @since 0.1.0
 * @category commands
 */
export const keys = Command.make("keys").pipe(
  Command.withDescription(
    [
      "Creates the caller keys of the broker's projects (admin API: CONNECT_URL, CONNECT_ADMIN_TOKEN).",
      "",
      "Example: connect keys create --project prj_web --environment production"
    ].join("\n")
  ),
  Command.withSubcommands([createKey])
)
