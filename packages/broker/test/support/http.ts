/**
 * HTTP as the tests' callers and browsers speak it to a broker, over plain `fetch`.
 */
import type { Method, Route } from "effect-connect/Protocol"

/** What a browser does with one request: the answer, its redirect not followed. */
export const visit = async (
  url: string | URL
): Promise<{ readonly status: number; readonly location: string | null; readonly text: string }> => {
  const response = await fetch(url, { redirect: "manual" })
  return { status: response.status, location: response.headers.get("location"), text: await response.text() }
}

/** Sends `body` (if any) as JSON with `method` and `key` as the bearer token; the answer, unread. */
export const sendJson = (method: string, url: string, body: unknown, key: string): Promise<Response> =>
  fetch(url, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })

/** POSTs `body` as JSON with `key` as the bearer token, as a caller of the broker does; the answer, unread. */
export const postJson = (url: string, body: unknown, key: string): Promise<Response> => sendJson("POST", url, body, key)

/**
 * A call of the admin API at `baseUrl` with the admin `token`: its JSON answer,
 * or an error naming the route and the answer.
 */
export const adminRequest = async <P extends `/${string}`>(
  baseUrl: string,
  token: string,
  route: Route<Method, P>,
  params: Parameters<Route<Method, P>["path"]>[0],
  body?: unknown
): Promise<unknown> => {
  const answer = await sendJson(route.method, `${baseUrl}${route.path(params)}`, body, token)
  const text = await answer.text()
  if (!answer.ok) throw new Error(`${route.method} ${route.pattern} answered ${answer.status}: ${text}`)
  return JSON.parse(text)
}
