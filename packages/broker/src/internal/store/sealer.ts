/**
 * Row sealing, in one place: every secret the store keeps is sealed by the
 * `Cipher` with the row's identity (`table/column/id`) as associated data, so
 * a sealed value copied to another row or column does not open.
 *
 * @internal
 */
import { Effect, type Redacted } from "effect"
import type { CipherService, DecryptionFailed } from "../../Cipher.js"

/** Every sealed column of the store, as `table/column`. */
export type SealedColumn =
  | "connectors/client_secret"
  | "connectors/private_key"
  | "grants/refresh_token"
  | "grants/access_token"
  | "issued_tokens/access_token"
  | "authorization_requests/state"
  | "authorization_requests/code_verifier"
  | "authorization_requests/sealed_grant"
  | "authorization_requests/device_code"
  | "webhooks/secret"

/** Seals and opens the secrets of rows. */
export interface Sealer {
  /** Seals `value` for the row `id`'s `column`. */
  readonly seal: (value: Redacted.Redacted<string>, column: SealedColumn, id: string) => Effect.Effect<string>
  /** Opens what `seal` sealed for the same row and column. */
  readonly unseal: (
    sealed: string,
    column: SealedColumn,
    id: string
  ) => Effect.Effect<Redacted.Redacted<string>, DecryptionFailed>
  /** Opens a nullable column: none when it holds none. */
  readonly unsealNullable: (
    sealed: string | null,
    column: SealedColumn,
    id: string
  ) => Effect.Effect<Redacted.Redacted<string> | undefined, DecryptionFailed>
}

/** The row's identity, the associated data of its sealed values. */
const aad = (column: SealedColumn, id: string) => `${column}/${id}`

/** The sealer over a `Cipher`. */
export const makeSealer = (cipher: CipherService): Sealer => {
  const unseal = (sealed: string, column: SealedColumn, id: string) => cipher.decrypt(sealed, aad(column, id))
  return {
    seal: (value, column, id) => cipher.encrypt(value, aad(column, id)),
    unseal,
    unsealNullable: (sealed, column, id) => (sealed === null ? Effect.succeed(undefined) : unseal(sealed, column, id))
  }
}
