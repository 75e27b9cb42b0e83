/**
 * JSON helpers shared by the SDK, the broker and the CLI.
 *
 * @since 0.2.0
 */
import * as json from "./internal/json.js"
import * as schema from "./internal/schema.js"

/**
 * JSON with object keys sorted at every depth, so that two equal values give
 * the same string whatever order their keys were written in.
 *
 * @since 0.2.0
 * @category utils
 */
export const canonicalJson: (value: unknown) => string = json.canonicalJson

/**
 * Whether a value is a plain object (not an array, not null).
 *
 * @since 0.2.0
 * @category guards
 */
export const isRecord: (value: unknown) => value is Record<string, unknown> = json.isRecord

/**
 * A JSON object with string keys, whose members are plain JSON values.
 *
 * @since 0.2.0
 * @category schemas
 */
export const JsonObject = schema.JsonObject

/**
 * A member that may be absent, or `null` (read as absent), as servers write optional members.
 *
 * @since 0.2.0
 * @category schemas
 */
export const optionalNullable = schema.optionalNullable
