/**
 * Presets of identity providers: Google, Microsoft Entra ID, and any OpenID
 * Connect provider by its discovery document.
 *
 * @since 0.2.0
 */
import { standardAnswer } from "./answers.js"
import type { Preset } from "./Presets.js"

/**
 * Google, Microsoft Entra ID and generic OpenID Connect.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const identity: ReadonlyArray<Preset> = [
  {
    name: "google",
    title: "Google",
    docs: "https://developers.google.com/identity/protocols/oauth2/web-server",
    grants: ["authorization_code", "refresh_token", "device_code"],
    accept: "application/json",
    rotation: "never",
    // Revoking an access token revokes its refresh token too, and the other way round.
    revocation: "grant",
    answer: standardAnswer,
    notes:
      "A refresh token comes only with access_type=offline, and again only with prompt=consent; both are sent. Revoking any token of a grant ends the grant. The device flow needs a client of type TVs and Limited Input devices and allows only some scopes.",
    settings: {
      type: "oauth",
      name: "Google",
      authorizationEndpoint: "https://accounts.google.com/o/oauth2/v2/auth",
      tokenEndpoint: "https://oauth2.googleapis.com/token",
      revocationEndpoint: "https://oauth2.googleapis.com/revoke",
      // The device flow's own client type and scope list:
      // https://developers.google.com/identity/protocols/oauth2/limited-input-device
      deviceAuthorizationEndpoint: "https://oauth2.googleapis.com/device/code",
      // access_type=offline asks for a refresh token at the first code exchange:
      // https://cloud.google.com/nodejs/docs/reference/google-auth-library/7.4.1/google-auth-library/generateauthurlopts
      authorizationParams: { access_type: "offline", prompt: "consent" },
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["openid", "email"] },
      defaultTokenLifetimeSeconds: 3600
    }
  },
  {
    name: "microsoft",
    title: "Microsoft Entra ID",
    docs: "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow",
    grants: ["authorization_code", "refresh_token", "client_credentials", "device_code", "install"],
    accept: "application/json",
    rotation: "always",
    revocation: "none",
    answer: standardAnswer,
    tenant: { description: "the directory (tenant) id, or organizations, common, consumers", default: "organizations" },
    notes:
      "offline_access gives a refresh token. A directory's admin installs through admin consent; its app tokens come from client credentials at its own endpoint.",
    settings: {
      type: "oauth",
      name: "Microsoft Graph",
      authorizationEndpoint: "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/authorize",
      tokenEndpoint: "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token",
      deviceAuthorizationEndpoint: "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/devicecode",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: {
        app: ["https://graph.microsoft.com/.default"],
        user: ["openid", "offline_access", "https://graph.microsoft.com/User.Read"]
      },
      defaultTokenLifetimeSeconds: 3600,
      installations: {
        authorizationEndpoint: "https://login.microsoftonline.com/{tenantId}/v2.0/adminconsent",
        tenantIdFrom: { callback: "tenant" },
        tokenEndpoint: "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token"
      }
    }
  },
  {
    name: "oidc",
    title: "OpenID Connect (any issuer)",
    docs: "https://openid.net/specs/openid-connect-discovery-1_0.html",
    grants: ["authorization_code", "refresh_token", "client_credentials"],
    accept: "application/json",
    rotation: "optional",
    revocation: "token",
    answer: standardAnswer,
    discovery: true,
    requires: [{ field: "issuer", hint: "the provider's issuer URL, whose /.well-known/openid-configuration is read" }],
    notes:
      "The endpoints (authorization, token, and revocation and device authorization where the document has them) and the authentication method come from the issuer's discovery document, read at start (5 seconds at most); an issuer that accepts neither client_secret_basic nor client_secret_post is refused unless the connector sets tokenEndpointAuthMethod.",
    settings: {
      type: "oauth",
      name: "OpenID Connect",
      tokenEndpoint: "",
      // What token_endpoint_auth_methods_supported means when it is absent (Discovery 1.0 section 3).
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: { user: ["openid", "offline_access"] }
    }
  }
]
