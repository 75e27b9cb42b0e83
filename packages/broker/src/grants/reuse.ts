/**
 * When a stored access token is handed out again instead of asking the
 * provider: the reuse rule, next to its constant.
 *
 * @since 0.1.0
 */

/**
 * How close to expiry a stored token may come and still be handed out (or half
 * its lifetime, when that is shorter).
 *
 * @since 0.1.0
 * @category constants
 */
export const REUSE_BUFFER_MS = 60_000

/**
 * Whether a stored token is handed out at `now`: until it comes within
 * `bufferMs` (default {@link REUSE_BUFFER_MS}) of expiry, or half its lifetime
 * when that is shorter, so that short-lived tokens (a provider's 30-second
 * ones) are reused too, for half their life.
 *
 * @since 0.1.0
 * @category utils
 */
export const isReusable = (
  token: { readonly expiresAt: number; readonly createdAt: number },
  now: number,
  bufferMs: number = REUSE_BUFFER_MS
): boolean => {
  const left = token.expiresAt - now
  return left > 0 && (left > bufferMs || left > now - token.createdAt)
}
