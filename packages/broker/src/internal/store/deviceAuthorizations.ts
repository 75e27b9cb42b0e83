/**
 * The device authorizations repository (RFC 8628): user requests of
 * `authorization_requests` completed on another device, which the broker
 * polls the provider for. The device code is sealed like `state`.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type { DeviceAuthorizationStore } from "../../Store.js"
import { type AuthorizationRow, createAuthorizationRequest, toAuthorizationRequest } from "./authorizationRequests.js"
import { fail, num, type Repository, transaction } from "./common.js"
import type { DeviceAuthorizationRecord } from "./models.js"
import type { Sealer } from "./sealer.js"

interface DeviceAuthorizationRow extends AuthorizationRow {
  readonly device_code: string | null
  readonly verification_url: string | null
  readonly poll_interval_ms: number | string | null
  readonly next_poll_at: number | string | null
}

/** A device authorization row, its secrets opened; none when the request is not one. */
const toDeviceAuthorization = (sealer: Sealer) => (row: DeviceAuthorizationRow) =>
  Effect.gen(function* () {
    if (row.device_code === null || row.user_code === null) return Option.none<DeviceAuthorizationRecord>()
    const request = yield* toAuthorizationRequest(sealer)(row)
    const deviceCode = yield* sealer.unseal(row.device_code, "authorization_requests/device_code", row.id)
    return Option.some<DeviceAuthorizationRecord>({
      request,
      deviceCode,
      userCode: row.user_code,
      verificationUrl: row.verification_url ?? "",
      intervalMs: row.poll_interval_ms === null ? 5_000 : num(row.poll_interval_ms),
      nextPollAt: row.next_poll_at === null ? 0 : num(row.next_poll_at)
    })
  })

/** Creates a pending request with its device authorization, in one transaction. */
const createDeviceAuthorizationRequest =
  ({ sql, sealer }: Repository): DeviceAuthorizationStore["createDeviceAuthorizationRequest"] =>
  (input, device) =>
    transaction(sql)(
      Effect.gen(function* () {
        const record = yield* createAuthorizationRequest({ sql, sealer })(input)
        yield* Effect.gen(function* () {
          yield* sql`UPDATE authorization_requests SET ${sql.update({
            device_code: yield* sealer.seal(device.deviceCode, "authorization_requests/device_code", record.id),
            user_code: device.userCode,
            verification_url: device.verificationUrl,
            poll_interval_ms: device.intervalMs,
            next_poll_at: device.nextPollAt
          })} WHERE id = ${record.id}`
        }).pipe(Effect.mapError(fail("save a device authorization")))
        return {
          request: { ...record, userCode: device.userCode },
          ...device
        } satisfies DeviceAuthorizationRecord
      })
    )

/** The device authorization of a request, if it is one. */
const findDeviceAuthorization =
  ({ sql, sealer }: Repository): DeviceAuthorizationStore["findDeviceAuthorization"] =>
  (id) =>
    sql<DeviceAuthorizationRow>`SELECT * FROM authorization_requests WHERE id = ${id}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed(Option.none<DeviceAuthorizationRecord>())
          : toDeviceAuthorization(sealer)(rows[0])
      ),
      Effect.mapError(fail("read a device authorization"))
    )

/** The ids of the device authorizations still pending and open at `now`. */
const listPendingDeviceAuthorizations =
  ({ sql }: Repository): DeviceAuthorizationStore["listPendingDeviceAuthorizations"] =>
  (now) =>
    sql<{ id: string }>`SELECT id FROM authorization_requests
    WHERE status = 'pending' AND device_code IS NOT NULL AND expires_at > ${now} ORDER BY next_poll_at`.pipe(
      Effect.map((rows) => rows.map((row) => row.id)),
      Effect.mapError(fail("list device authorizations"))
    )

/**
 * Takes the next poll of a pending, open device authorization whose poll
 * time has come, moving that time to `until`: of concurrent pollers (in any
 * replica), only one gets `true`.
 */
const claimDevicePoll =
  ({ sql }: Repository): DeviceAuthorizationStore["claimDevicePoll"] =>
  (id, now, until) =>
    sql<{ id: string }>`UPDATE authorization_requests SET next_poll_at = ${until}
    WHERE id = ${id} AND status = 'pending' AND device_code IS NOT NULL
      AND next_poll_at <= ${now} AND expires_at > ${now} RETURNING id`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim a device authorization poll"))
    )

/** Sets when a pending device authorization is polled next, and how often after that. */
const scheduleDevicePoll =
  ({ sql }: Repository): DeviceAuthorizationStore["scheduleDevicePoll"] =>
  (id, next) =>
    sql`UPDATE authorization_requests SET ${sql.update({
      poll_interval_ms: next.intervalMs,
      next_poll_at: next.nextPollAt
    })} WHERE id = ${id} AND status = 'pending'`.pipe(
      Effect.asVoid,
      Effect.mapError(fail("schedule a device authorization poll"))
    )

/** The device authorizations repository over the database, sealing with `sealer`. */
export const makeDeviceAuthorizations = (repository: Repository): DeviceAuthorizationStore => ({
  createDeviceAuthorizationRequest: createDeviceAuthorizationRequest(repository),
  findDeviceAuthorization: findDeviceAuthorization(repository),
  listPendingDeviceAuthorizations: listPendingDeviceAuthorizations(repository),
  claimDevicePoll: claimDevicePoll(repository),
  scheduleDevicePoll: scheduleDevicePoll(repository)
})
