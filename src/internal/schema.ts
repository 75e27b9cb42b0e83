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
export const describeParseError = (error: ParseResult.ParseError, prefix?: string): ReadonlyArray<FieldIssue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter((part) => part !== undefined).join("."),
    message: issue.message.replace(/, actual [\s\S]*$/, "")
  }))

/** A named field and what was wrong with it. */
export interface FieldIssue {
  readonly path: string
  readonly message: string
}
