/**
 * The answer shape most providers' token endpoints have, shared by the
 * preset families.
 *
 * @internal
 */
import type { AnswerShape } from "./Presets.js"

/** JSON, OAuth errors (a 4xx with `error`), `expires_in` a number. */
export const standardAnswer: AnswerShape = { body: "json", errors: "oauth", expiresIn: "number" }
