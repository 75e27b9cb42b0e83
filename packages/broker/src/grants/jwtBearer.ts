/**
 * The JWT bearer grant (RFC 7523) for `jwt-bearer` subjects: an assertion the
 * broker signs with the connector's private key. Fetched once across replicas
 * by `direct.ts`.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { InvalidRequest, ProviderError } from "effect-connect/ConnectError"
import type { JwtBearerSubject } from "effect-connect/Subject"
import { signAssertion } from "../Assertion.js"
import type { JwtBearerGrant } from "../ProviderClient.js"
import type { Connector } from "../Store.js"

/**
 * The JWT bearer grant of a subject, its assertion signed; a connector without
 * a signing key, or claims that cannot be signed, is a typed error.
 *
 * @since 0.1.0
 * @category grants
 */
export const jwtBearerGrant = (
  connector: Connector,
  subject: JwtBearerSubject,
  tokenEndpoint: string,
  targets: Pick<JwtBearerGrant, "scope" | "resource" | "audience">
): Effect.Effect<JwtBearerGrant, InvalidRequest | ProviderError> =>
  Effect.gen(function* () {
    const algorithm = connector.settings.signingAlgorithm
    if (connector.privateKey === undefined || algorithm === undefined) {
      return yield* new InvalidRequest({
        connector: connector.uid,
        status: 400,
        issues: [
          {
            path: "subject.type",
            message: `connector "${connector.uid}" has no privateKey and signingAlgorithm for jwt-bearer subjects`
          }
        ]
      })
    }
    const assertion = yield* signAssertion({
      privateKey: connector.privateKey,
      algorithm,
      ...(connector.settings.privateKeyId === undefined ? {} : { keyId: connector.settings.privateKeyId }),
      // RFC 7523 defaults: the client is the issuer, the token endpoint the audience.
      issuer: subject.iss ?? connector.clientId,
      audience: subject.aud ?? tokenEndpoint,
      subject: subject.sub,
      ...(subject.additionalClaims === undefined ? {} : { additionalClaims: subject.additionalClaims })
    }).pipe(
      Effect.mapError((error) =>
        error.kind === "reserved_claim" || error.kind === "invalid_claims"
          ? new InvalidRequest({
              connector: connector.uid,
              status: 400,
              issues: [{ path: "subject.additionalClaims", message: error.message }]
            })
          : new ProviderError({
              connector: connector.uid,
              status: 502,
              detail: `the connector's signing key cannot be used (${error.kind}); fix its configuration`
            })
      )
    )
    return { type: "jwt_bearer", assertion, ...targets } satisfies JwtBearerGrant
  })
