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

/** How deep a parse error may nest, and how many issues and characters it may give, to be described. */
const MAX_ISSUE_DEPTH = 128
const MAX_ISSUE_NODES = 10_000
const MAX_ISSUES = 50
const MAX_ISSUE_TEXT = 500

const children = (issue: ParseResult.ParseIssue): ReadonlyArray<ParseResult.ParseIssue> => {
  switch (issue._tag) {
    case "Pointer":
    case "Refinement":
    case "Transformation":
      return [issue.issue]
    case "Composite":
      return Array.isArray(issue.issues) ? issue.issues : [issue.issues as ParseResult.ParseIssue]
    default:
      return []
  }
}

/** Whether an issue tree is small enough to format (measured without recursion). */
const isBounded = (root: ParseResult.ParseIssue): boolean => {
  const stack: Array<readonly [ParseResult.ParseIssue, number]> = [[root, 1]]
  let nodes = 0
  while (stack.length > 0) {
    const [issue, depth] = stack.pop() as readonly [ParseResult.ParseIssue, number]
    if (depth > MAX_ISSUE_DEPTH || ++nodes > MAX_ISSUE_NODES) return false
    for (const child of children(issue)) stack.push([child, depth + 1])
  }
  return true
}

const clip = (text: string): string => (text.length > MAX_ISSUE_TEXT ? `${text.slice(0, MAX_ISSUE_TEXT)}…` : text)

/**
 * One line per issue, `path: expected ...`. The actual value is left out on
 * purpose: it may be a token or a secret. A field that strict decoding does
 * not know is said to be one. What it formats is bounded (depth, number of
 * issues, length of each), so that no input can overflow the stack.
 */
export const describeParseError = (error: ParseResult.ParseError, prefix?: string): ReadonlyArray<FieldIssue> => {
  if (!isBounded(error.issue)) {
    return [{ path: prefix ?? "", message: "the input nests too deeply to describe" }]
  }
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
    .slice(0, MAX_ISSUES)
    .map((issue) => ({
      path: clip([prefix, ...issue.path.map(String)].filter((part) => part !== undefined).join(".")),
      message:
        issue._tag === "Unexpected"
          ? "is not a known field (check its spelling)"
          : clip(issue.message.replace(/, actual [\s\S]*$/, ""))
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
