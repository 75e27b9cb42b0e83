/**
 * Presets of business software: Salesforce, HubSpot, Zendesk, Xero, Stripe
 * Connect, Shopify.
 *
 * @since 0.2.0
 */
import { standardAnswer } from "./answers.js"
import type { Preset } from "./Presets.js"

/**
 * Salesforce, HubSpot, Zendesk, Xero, Stripe Connect, Shopify.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const business: ReadonlyArray<Preset> = [
  {
    name: "salesforce",
    title: "Salesforce",
    docs: "https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_endpoints.htm&type=5",
    grants: ["authorization_code", "refresh_token", "client_credentials"],
    accept: "application/json",
    rotation: "optional",
    revocation: "grant",
    answer: { body: "json", errors: "oauth", expiresIn: "absent" },
    tenant: { description: "the org's My Domain host prefix (acme.my), or login", default: "login" },
    notes: "Answers carry no expires_in: the session timeout of the org applies. Client credentials need My Domain.",
    settings: {
      type: "oauth",
      name: "Salesforce",
      authorizationEndpoint: "https://{tenantId}.salesforce.com/services/oauth2/authorize",
      tokenEndpoint: "https://{tenantId}.salesforce.com/services/oauth2/token",
      revocationEndpoint: "https://{tenantId}.salesforce.com/services/oauth2/revoke",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["api", "refresh_token"] },
      defaultTokenLifetimeSeconds: 7200
    }
  },
  {
    name: "hubspot",
    title: "HubSpot",
    docs: "https://developers.hubspot.com/docs/api-reference/2026-03/authentication/manage-oauth-tokens",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    rotation: "never",
    revocation: "token",
    answer: { ...standardAnswer, errors: "hubspot" },
    notes:
      "Access tokens last 30 minutes. The date-versioned OAuth API (2026-03) is used: the v1 token endpoint retires on February 16, 2027 (https://developers.hubspot.com/changelog/v1-oauth-api-deprecation). Its errors come in HubSpot's own shape (category, message, correlationId).",
    settings: {
      type: "oauth",
      name: "HubSpot",
      authorizationEndpoint: "https://app.hubspot.com/oauth/authorize",
      tokenEndpoint: "https://api.hubapi.com/oauth/2026-03/token",
      revocationEndpoint: "https://api.hubapi.com/oauth/2026-03/token/revoke",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["oauth"] },
      defaultTokenLifetimeSeconds: 1800
    }
  },
  {
    name: "zendesk",
    title: "Zendesk",
    docs: "https://developer.zendesk.com/documentation/api-basics/authentication/refresh-token",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    rotation: "always",
    revocation: "none",
    answer: { body: "json", errors: "oauth", expiresIn: "absent" },
    tenant: { description: "the account's subdomain (acme for acme.zendesk.com)" },
    notes: "A refresh returns a new refresh token and deletes the previous access and refresh tokens.",
    settings: {
      type: "oauth",
      name: "Zendesk",
      authorizationEndpoint: "https://{tenantId}.zendesk.com/oauth/authorizations/new",
      tokenEndpoint: "https://{tenantId}.zendesk.com/oauth/tokens",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["read"] },
      defaultTokenLifetimeSeconds: 3600
    }
  },
  {
    name: "xero",
    title: "Xero",
    docs: "https://developer.xero.com/documentation/guides/oauth2/auth-flow",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    // Rotation, the 30-minute grace period, 30-minute access tokens and 60-day refresh tokens:
    // https://developer.xero.com/faq/oauth2
    rotation: "always",
    revocation: "grant",
    answer: standardAnswer,
    notes:
      "Refresh tokens rotate; the previous one is still accepted for 30 minutes, and an unused one expires after 60 days. Tenants come from the connections API.",
    settings: {
      type: "oauth",
      name: "Xero",
      authorizationEndpoint: "https://login.xero.com/identity/connect/authorize",
      tokenEndpoint: "https://identity.xero.com/connect/token",
      revocationEndpoint: "https://identity.xero.com/connect/revocation",
      tokenEndpointAuthMethod: "client_secret_basic",
      // Granular scopes: apps created since 2 March 2026 cannot ask accounting.transactions(.read), older ones
      // must move by September 2027: https://www.apideck.com/blog/xero-scopes (the scope list:
      // https://developer.xero.com/documentation/oauth2/scopes).
      defaultScopes: { user: ["openid", "offline_access", "accounting.invoices.read"] },
      defaultTokenLifetimeSeconds: 1800,
      refreshTokenGracePeriodSeconds: 1800
    }
  },
  {
    name: "stripe",
    title: "Stripe Connect",
    docs: "https://docs.stripe.com/connect/oauth-reference",
    grants: ["authorization_code", "refresh_token", "install"],
    accept: "application/json",
    rotation: "never",
    // /oauth/deauthorize takes client_id and stripe_user_id, not the RFC 7009 form.
    revocation: "none",
    // The access token is a secret key of the connected account that does not expire (no expires_in); the
    // refresh token gets another of equal or lesser scope. Stripe's own OAuthToken type:
    // https://github.com/stripe/stripe-node/blob/master/types/OAuth.d.ts
    answer: { body: "json", errors: "oauth", expiresIn: "absent" },
    notes:
      "Standard accounts only; Stripe recommends Connect Onboarding over OAuth for new platforms. The client secret is the platform's secret key. Access tokens do not expire. The connected account (stripe_user_id) becomes the installation; disconnect it with /oauth/deauthorize.",
    settings: {
      type: "oauth",
      name: "Stripe Connect",
      authorizationEndpoint: "https://connect.stripe.com/oauth/authorize",
      tokenEndpoint: "https://connect.stripe.com/oauth/token",
      tokenEndpointAuthMethod: "client_secret_post",
      // Stripe's own default is read_only: https://stripe.com/docs/connect/reference
      defaultScopes: { user: ["read_write"] },
      defaultTokenLifetimeSeconds: 3600,
      installations: { tenantIdFrom: { tokenResponse: "stripe_user_id" } }
    }
  },
  {
    name: "shopify",
    title: "Shopify",
    docs: "https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    // Expiring offline tokens last 1 hour; each refresh replaces the refresh token (90 days):
    // https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens
    // https://shopify.dev/docs/apps/build/security/credentials-and-data/use-expiring-offline-access-tokens
    rotation: "always",
    revocation: "none",
    answer: standardAnswer,
    tenant: { description: "the shop's subdomain (acme for acme.myshopify.com)" },
    notes:
      'The code exchange carries expiring=1 (tokenParams), so offline tokens last 1 hour and come with a refresh token that rotates; a refresh sends only the refresh token. Public apps must use expiring offline tokens: those created from April 1, 2026 at once, the others from January 1, 2027 (https://shopify.dev/changelog/offline-access-tokens-now-support-expiry-and-refresh). A custom or merchant-created app may keep non-expiring tokens: tokenParams { "expiring": "" } sends none, with a long defaultTokenLifetimeSeconds. One connector per shop: a new expiring token revokes the shop\'s earlier ones.',
    settings: {
      type: "oauth",
      name: "Shopify",
      authorizationEndpoint: "https://{tenantId}.myshopify.com/admin/oauth/authorize",
      tokenEndpoint: "https://{tenantId}.myshopify.com/admin/oauth/access_token",
      // Only the code exchange asks for an expiring token; Shopify's refresh request has no such parameter.
      tokenParams: { expiring: "1" },
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["read_products"] },
      defaultTokenLifetimeSeconds: 3600
    }
  }
]
