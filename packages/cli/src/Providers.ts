/**
 * `connect providers list|show <name>`: the catalogue of provider presets a
 * connector can name with `"provider"` (or `connect connectors create
 * --provider`). It reads the broker package's catalogue; no server is asked.
 *
 * @since 0.2.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { findPreset, type Preset, presetNames, presets } from "@effect-connect/broker/providers/Presets"
import { Console, Effect } from "effect"
import { fail } from "./Exit.js"
import * as Flags from "./Flags.js"
import { table } from "./Table.js"

const format = Flags.format("plain (a table or field lines) or json (the presets as the catalogue holds them)")

/** Where an installation's tenant id comes from, in words. */
const installationSource = (preset: Preset): string => {
  if (preset.grants.includes("app_installation")) return "callback installation_id (GitHub App)"
  const from = preset.settings.installations?.tenantIdFrom
  if (from === undefined) return "-"
  return "callback" in from ? `callback ${from.callback}` : `token answer ${from.tokenResponse}`
}

/**
 * A preset, one `field: value` line each.
 *
 * @since 0.2.0
 * @category formatting
 */
export const formatPreset = (preset: Preset): string => {
  const { settings } = preset
  const lines: Array<[string, string]> = [
    ["provider", preset.name],
    ["title", preset.title],
    ["grants", preset.grants.join(" ")],
    ["authorization endpoint", settings.authorizationEndpoint ?? (preset.discovery === true ? "(discovery)" : "-")],
    ["token endpoint", settings.tokenEndpoint === "" ? "(discovery)" : settings.tokenEndpoint],
    ["revocation endpoint", settings.revocationEndpoint ?? "-"],
    ["auth method", settings.tokenEndpointAuthMethod],
    ["accept", preset.accept],
    ["default scopes (app)", (settings.defaultScopes?.app ?? []).join(" ") || "none"],
    ["default scopes (user)", (settings.defaultScopes?.user ?? []).join(" ") || "none"],
    [
      "authorization params",
      Object.entries(settings.authorizationParams ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(" ") || "none"
    ],
    ["installation source", installationSource(preset)],
    ["rotation", preset.rotation],
    ["grace period", `${settings.refreshTokenGracePeriodSeconds ?? 0} s`],
    ["revocation", preset.revocation],
    ["answer", `${preset.answer.body}, errors ${preset.answer.errors}, expires_in ${preset.answer.expiresIn}`],
    ["default lifetime", `${settings.defaultTokenLifetimeSeconds ?? 3600} s`]
  ]
  // The provider's own ways, only where the preset has them.
  const own: Array<[string, string | undefined]> = [
    ["device endpoint", settings.deviceAuthorizationEndpoint],
    ["device scope parameter", settings.deviceScopeParameter],
    ["refresh endpoint", settings.refreshEndpoint],
    [
      "token params",
      settings.tokenParams === undefined
        ? undefined
        : Object.entries(settings.tokenParams)
            .map(([k, v]) => `${k}=${v}`)
            .join(" ")
    ],
    ["scope separator", settings.scopeSeparator === undefined ? undefined : `"${settings.scopeSeparator}"`],
    [
      "revocation request",
      settings.revocationRequest === undefined
        ? undefined
        : [
            settings.revocationRequest.body,
            ...Object.entries(settings.revocationRequest.headers ?? {}).map(([k, v]) => `${k}: ${v}`)
          ].join(", ")
    ]
  ]
  for (const [key, value] of own) if (value !== undefined) lines.push([key, value])
  if (preset.tenant !== undefined) {
    const fallback = preset.tenant.default === undefined ? "" : ` (default ${preset.tenant.default})`
    lines.push(["tenantId", `${preset.tenant.description}${fallback}`])
  }
  for (const required of preset.requires ?? []) lines.push([`requires ${required.field}`, required.hint])
  if (preset.notes !== undefined) lines.push(["notes", preset.notes])
  lines.push(["documentation", preset.docs])
  const width = Math.max(...lines.map(([key]) => key.length))
  return lines.map(([key, value]) => `${`${key}:`.padEnd(width + 2)}${value}`).join("\n")
}

const list = Command.make("list", { format }, (input) =>
  input.format === "json"
    ? Console.log(JSON.stringify(presets, null, 2))
    : Console.log(
        table([
          ["PROVIDER", "TITLE", "GRANTS", "ROTATION", "REVOCATION"],
          ...presets.map((p) => [p.name, p.title, p.grants.join(","), p.rotation, p.revocation])
        ])
      )
).pipe(
  Command.withDescription(
    ["Lists the provider presets a connector can name.", "", "Example: connect providers list"].join("\n")
  )
)

const show = Command.make(
  "show",
  { name: Args.text({ name: "name" }).pipe(Args.withDescription("The preset, e.g. github")), format },
  (input) =>
    Effect.gen(function* () {
      const preset = findPreset(input.name)
      if (preset === undefined) {
        return yield* fail(`Unknown provider "${input.name}": expected one of ${presetNames().join(", ")}`)
      }
      return yield* Console.log(input.format === "json" ? JSON.stringify(preset, null, 2) : formatPreset(preset))
    })
).pipe(
  Command.withDescription(
    [
      "Shows a provider preset: its endpoints, scopes, quirks and documentation.",
      "",
      "Example: connect providers show slack --format json"
    ].join("\n")
  )
)

/**
 * `connect providers`.
 *
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make("providers").pipe(
  Command.withDescription(
    ["The catalogue of provider presets: list, show.", "", "Example: connect providers show github"].join("\n")
  ),
  Command.withSubcommands([list, show])
)
