/**
 * Connector metadata: `GET /v1/connect/connectors/{connector}`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A connector's public metadata as the server sends it (`data` holds the
 * provider-specific details).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorMetadataWire = Schema.Struct({
  id: Schema.String,
  uid: Schema.String,
  name: Schema.String,
  type: Schema.String,
  service: Schema.String,
  clientUrl: Schema.optionalWith(Schema.String, { nullable: true, exact: true }),
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  data: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), {
    nullable: true,
    default: () => ({})
  })
}).annotations({ identifier: "ConnectorMetadataWire" })

/**
 * A connector's public metadata as the SDK returns it: `data` is renamed
 * `vendor`, as `@vercel/connect` does.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorMetadata = Schema.rename(ConnectorMetadataWire, { data: "vendor" })

/**
 * @since 0.1.0
 * @category models
 */
export type ConnectorMetadata = Schema.Schema.Type<typeof ConnectorMetadata>
