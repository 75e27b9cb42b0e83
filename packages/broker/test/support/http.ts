/**
 * HTTP as the tests' callers and browsers speak it to a broker, over plain `fetch`.
 */

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
