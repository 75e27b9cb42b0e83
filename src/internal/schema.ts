import { ParseResult, Schema } from "effect"
import { isJsonValue } from "./json.js"

/** Any JSON value (plain data that survives `JSON.stringify` unchanged). */
export const JsonValue = Schema.Unknown.pipe(
  Schema.filter(
    (value) => isJsonValue(value) || "Expected a JSON value (plain objects, arrays, strings, finite numbers)"
  )
).annotations({ identifier: "JsonValue" })

/** A JSON object with string keys. */
export const JsonObject = Schema.Record({ key: Schema.String, value: JsonValue }).pipe(
  Schema.filter((value) => isJsonValue(value) || "Expected a plain JSON object")
)

/** Optional in a server's answer; `null` reads as absent. */
export const optionalNullable = <S extends Schema.Schema.All>(schema: S) =>
  Schema.optionalWith(schema, { nullable: true, exact: true })

/**
 * One line per issue, `path: expected ...`. The actual value is left out on
 * purpose: it may be a token or a secret.
 */
export const describeParseError = (error: ParseResult.ParseError, prefix?: string): ReadonlyArray<FieldIssue> => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter((part) => part !== undefined).join("."),
    message: issue.message.replace(/, actual [\s\S]*$/, "")
  }))
  // An optional field is `X | undefined`: once X's own issue is reported, the
  // `undefined` alternative ("Expected undefined") only misleads.
  const within = (path: string, other: string) => path === "" || other === path || other.startsWith(`${path}.`)
  return issues.filter(
    (issue) =>
      issue.message !== "Expected undefined" ||
      !issues.some(
        (other) => other !== issue && other.message !== "Expected undefined" && within(issue.path, other.path)
      )
  )
}

/** A named field and what was wrong with it. */
export interface FieldIssue {
  readonly path: string
  readonly message: string
}
