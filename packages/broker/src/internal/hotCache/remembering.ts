/**
 * The configuration reads of the token path, remembered by the hot cache: the
 * caller of a project key, a connector, a link and a connector's
 * installations. Every request for a token made them, in that order, before
 * it could look for a stored token; a refresh made them as well. They change
 * only through the store's configuration operations, which empty the cache on
 * every replica (`internal/store/invalidating.ts`), so a remembered read is
 * never older than the last change the cache was told of.
 *
 * Only the token path reads through this: the administration's reads, some
 * inside transactions that change what they read, go to the database.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type { HotCacheService } from "../../HotCache.js"
import type { StoreService } from "../../Store.js"
import { hashKey } from "../store/common.js"

/** `store`, with its configuration reads remembered by `cache`. */
export const remembering = (store: StoreService, cache: HotCacheService): StoreService => ({
  ...store,
  // A key's caller is the one the fast path looks up: one entry for both, filled here.
  findCaller: (key) =>
    Effect.suspend(() => {
      const keyHash = hashKey(key)
      const known = cache.caller(keyHash)
      if (known !== undefined) return Effect.succeed(Option.some(known))
      const at = cache.generation()
      return Effect.tap(store.findCaller(key), (found) => {
        if (Option.isSome(found)) cache.rememberCaller(at, keyHash, found.value)
      })
    }),
  findConnector: (uidOrId) => cache.remembered(`connector\n${uidOrId}`, store.findConnector(uidOrId)),
  findLink: (connectorId, projectId) =>
    cache.remembered(`link\n${connectorId}\n${projectId}`, store.findLink(connectorId, projectId)),
  listInstallations: (connectorId) =>
    cache.remembered(`installations\n${connectorId}`, store.listInstallations(connectorId))
})
