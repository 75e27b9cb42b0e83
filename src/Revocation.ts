/**
 * Revocation of issued tokens: `DELETE /v1/connect/connectors/{connector}/tokens`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Subject } from "./Subject.js"

/**
 * Which tokens to revoke. Without a subject, every token of the connector (for
 * the caller's project); with an installation, only that installation's.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RevokeParams = Schema.Struct({
  subject: Schema.optional(Subject),
  installationId: Schema.optional(Schema.NonEmptyString)
}).annotations({ identifier: "RevokeParams" })

/**
 * @since 0.1.0
 * @category models
 */
export interface RevokeParams extends Schema.Schema.Type<typeof RevokeParams> {}

/**
 * @since 0.1.0
 * @category models
 */
export type RevokeParamsEncoded = Schema.Schema.Encoded<typeof RevokeParams>

const Count = Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0, nullable: true })

/**
 * What a revocation did: how many tokens matched, how many were deleted, and how
 * many the provider revoked, did not support revoking, or failed to revoke.
 * Counts a server leaves out read as 0.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RevocationSummary = Schema.Struct({
  tokensFound: Count,
  deleted: Count,
  providerRevoked: Count,
  providerSkipped: Count,
  providerFailed: Count
}).annotations({ identifier: "RevocationSummary" })

/**
 * @since 0.1.0
 * @category models
 */
export interface RevocationSummary extends Schema.Schema.Type<typeof RevocationSummary> {}
