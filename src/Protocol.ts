/**
 * The Connect wire protocol's shared pieces beyond its schemas: how a
 * `Retry-After` header reads, and how a request that fails validation is
 * described field by field (the `issues` of a `bad_request`).
 *
 * @since 0.2.0
 */
import type { ParseResult } from "effect"
import * as schema from "./internal/schema.js"
import * as transport from "./internal/transport.js"

/**
 * A named field and what was wrong with it.
 *
 * @since 0.2.0
 * @category models
 */
export interface FieldIssue extends schema.FieldIssue {}

/**
 * The issues of a failed decoding, one per field (`path: expected ...`),
 * without the values (they may be secrets); `prefix` goes before each path.
 *
 * @since 0.2.0
 * @category utils
 */
export const describeParseError: (error: ParseResult.ParseError, prefix?: string) => ReadonlyArray<FieldIssue> =
  schema.describeParseError

/**
 * `Retry-After` in milliseconds: delta seconds, or an HTTP date (`nowMs` reads
 * it); `undefined` when absent or unreadable.
 *
 * @since 0.2.0
 * @category utils
 */
export const parseRetryAfter: (value: string | undefined, nowMs: number) => number | undefined =
  transport.parseRetryAfter
