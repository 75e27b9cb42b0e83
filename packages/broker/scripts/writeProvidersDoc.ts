/** `npm run docs:providers`: writes docs/providers.md from the preset catalogue. */
import { writeFileSync } from "node:fs"
import { PROVIDERS_DOC, renderProvidersDoc } from "./providersDoc.js"

writeFileSync(PROVIDERS_DOC, renderProvidersDoc())
console.log(`wrote ${PROVIDERS_DOC}`)
