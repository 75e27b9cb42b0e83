import { tokenEndpointFor } from "../ConfigFile.js"
import type { Connector } from "../Store.js"
import { isTenantId } from "./limits.js"

/** Where an endpoint template takes the tenant's id. */
export const TENANT_ID = "{tenantId}"

/** Where a tenant's admin installs a connector: its install endpoint, or its authorization endpoint. */
export const installEndpointOf = (connector: Connector): string | undefined =>
  connector.settings.install?.authorizationEndpoint ?? connector.settings.authorizationEndpoint

const nonEmpty = (text: string | undefined): string | undefined =>
  text === undefined || text.length === 0 ? undefined : text

/** A string or number member of a JSON object at a dotted path (`team.id`), as text. */
export const memberAt = (object: { readonly [key: string]: unknown }, path: string): string | undefined => {
  let value: unknown = object
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
    value = (value as { readonly [key: string]: unknown })[part]
  }
  if (typeof value === "number" && Number.isFinite(value)) return String(value)
  return typeof value === "string" && value.length > 0 ? value : undefined
}

/**
 * The tenant the provider's redirect names, when the connector reads it from
 * there: `invalid` when it is not a plain tenant id.
 */
export const tenantFromCallback = (
  connector: Connector,
  query: Readonly<Record<string, string | undefined>>
): string | undefined | "invalid" => {
  const source = connector.settings.install?.tenantIdFrom
  const fromCallback = source !== undefined && "callback" in source ? nonEmpty(query[source.callback]) : undefined
  if (fromCallback !== undefined && !isTenantId(fromCallback)) return "invalid"
  return fromCallback
}

/** The tenant the token response names, when the connector reads it from there. */
export const tenantFromToken = (
  connector: Connector,
  fields: { readonly [key: string]: unknown } | undefined
): string | undefined => {
  const source = connector.settings.install?.tenantIdFrom
  return source !== undefined && "tokenResponse" in source && fields !== undefined
    ? memberAt(fields, source.tokenResponse)
    : undefined
}

/** The token endpoint an installation's code is exchanged at: the install's own (a tenant's), or the connector's. */
export const installTokenEndpoint = (connector: Connector, tenantId: string | undefined): string => {
  const template = connector.settings.install?.tokenEndpoint
  return template === undefined || (template.includes(TENANT_ID) && tenantId === undefined)
    ? connector.settings.tokenEndpoint
    : tokenEndpointFor(connector.settings, { tokenEndpoint: template, tenantId })
}
