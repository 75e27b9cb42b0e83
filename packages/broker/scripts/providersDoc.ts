/**
 * Renders `packages/broker/docs/providers.md` from the preset catalogue;
 * `writeProvidersDoc.ts` writes it (`npm run docs:providers`), and a test
 * fails when the file is out of date.
 */
import { fileURLToPath } from "node:url"
import { type Preset, presets } from "../src/providers/Presets.js"

/** Where the page is written. */
export const PROVIDERS_DOC = fileURLToPath(new URL("../docs/providers.md", import.meta.url))

const GRANT_NAMES: Readonly<Record<Preset["grants"][number], string>> = {
  authorization_code: "user",
  refresh_token: "refresh",
  client_credentials: "client credentials",
  device_code: "device",
  install: "install",
  app_installation: "GitHub App installation"
}

const installationSource = (preset: Preset): string => {
  if (preset.grants.includes("app_installation")) return "callback `installation_id`"
  const from = preset.settings.installations?.tenantIdFrom
  if (from === undefined) return "—"
  return "callback" in from ? `callback \`${from.callback}\`` : `token answer \`${from.tokenResponse}\``
}

const rotation = (preset: Preset): string => {
  const grace = preset.settings.refreshTokenGracePeriodSeconds
  return grace === undefined ? preset.rotation : `${preset.rotation} (grace ${grace} s)`
}

const REVOCATION: Readonly<Record<Preset["revocation"], string>> = {
  token: "token (RFC 7009)",
  grant: "whole grant",
  none: "none"
}

const row = (preset: Preset): string =>
  `| \`${preset.name}\` | ${preset.title} | ${preset.grants.map((grant) => GRANT_NAMES[grant]).join(", ")} | ${installationSource(preset)} | ${rotation(preset)} | ${REVOCATION[preset.revocation]} | [docs](${preset.docs}) |`

/** What the broker does differently for a preset, by its settings and answer shape; empty for none. */
const quirksOf = (preset: Preset): ReadonlyArray<string> => {
  const { settings, answer } = preset
  return [
    settings.scopeSeparator === undefined
      ? ""
      : `scopes joined with \`"${settings.scopeSeparator}"\` in the authorization URL`,
    settings.refreshEndpoint === undefined ? "" : `refreshes at \`${settings.refreshEndpoint}\``,
    settings.tokenParams === undefined
      ? ""
      : `the code exchange carries ${Object.entries(settings.tokenParams)
          .map(([name, value]) => `\`${name}=${value}\``)
          .join(", ")}`,
    settings.revocationRequest?.body === "json"
      ? `revocation with a JSON body${Object.keys(settings.revocationRequest.headers ?? {})
          .map((name) => ` and \`${name}\``)
          .join("")}`
      : "",
    settings.deviceScopeParameter === undefined
      ? ""
      : `device authorization scopes in \`${settings.deviceScopeParameter}\``,
    answer.body === "form" ? "form-encoded answers unless `Accept` asks for JSON" : "",
    answer.errors === "oauth" ? "" : `errors as \`${answer.errors}\``,
    answer.expiresIn === "number" ? "" : `\`expires_in\` ${answer.expiresIn}`,
    answer.scope === "array" ? "granted scope as a JSON array" : "",
    answer.userToken === undefined ? "" : `a user's token under \`${answer.userToken}\``
  ].filter((text) => text !== "")
}

const quirkLine = (preset: Preset): ReadonlyArray<string> => {
  const quirks = quirksOf(preset)
  return quirks.length === 0 ? [] : [`- \`${preset.name}\`: ${quirks.join("; ")}.`]
}

/** The page, as the catalogue says it. */
export const renderProvidersDoc = (): string =>
  [
    "# Provider presets",
    "",
    "<!-- Generated from packages/broker/src/providers by `npm run docs:providers`: do not edit by hand. -->",
    "",
    'A connector may name a preset with `"provider"` and give only its client id, secret and what is its own',
    "(`tenantId`, scopes); the preset supplies the rest, and the connector's own settings override it. See",
    "[Configuring real providers](authorization.md#configuring-real-providers), `connect providers show <name>` for",
    "every setting of one preset, and [testing.md](testing.md) for the quirk provider that reproduces each.",
    "",
    "- **grants**: user (authorization code with PKCE), refresh, client credentials (app tokens), device (RFC 8628),",
    "  install (a tenant's admin installs the connector), GitHub App installation (tokens from the app's JWT);",
    "- **installation source**: where an installation's tenant id is read;",
    "- **rotation**: whether a refresh hands out a new refresh token (`always`, `never`, `optional`), and how long",
    "  the spent one is still accepted;",
    "- **revocation**: what revoking means at the provider: one token (RFC 7009), the whole grant, or nothing the",
    "  broker can call (tokens are forgotten; remove the app at the provider).",
    "",
    "| provider | title | grants | installation source | rotation | revocation | documentation |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...presets.map(row),
    "",
    "## What the broker adapts to",
    "",
    "Each preset's settings and answer shape (`errors`: `ok_false` is Slack's HTTP 200 with `ok: false`, `error_200`",
    "GitHub's HTTP 200 with `error`, `hubspot` HubSpot's `category`, `message` and `correlationId`, `message` Twitch's",
    "`{status, message}` with the code in `message`). The quirk provider reproduces each.",
    "",
    ...presets.flatMap(quirkLine),
    ""
  ].join("\n")
