/**
 * Presets of developer tools: GitHub (OAuth app and GitHub App), GitLab,
 * Linear, Atlassian (Jira, Confluence), Figma, Airtable, Asana.
 *
 * @since 0.2.0
 */
import { standardAnswer } from "./answers.js"
import type { Preset } from "./Presets.js"

const atlassian = (name: string, title: string, docs: string, scopes: ReadonlyArray<string>): Preset => ({
  name,
  title,
  docs,
  grants: ["authorization_code", "refresh_token"],
  accept: "application/json",
  rotation: "always",
  revocation: "none",
  answer: standardAnswer,
  notes:
    "Rotating refresh tokens; the previous one is still accepted for 10 minutes. The site (cloud id) of a token comes from accessible-resources, not the token answer.",
  settings: {
    type: "oauth",
    name: title,
    authorizationEndpoint: "https://auth.atlassian.com/authorize",
    tokenEndpoint: "https://auth.atlassian.com/oauth/token",
    authorizationParams: { audience: "api.atlassian.com", prompt: "consent" },
    tokenEndpointAuthMethod: "client_secret_post",
    defaultScopes: { user: [...scopes, "offline_access"] },
    defaultTokenLifetimeSeconds: 3600,
    refreshTokenGracePeriodSeconds: 600
  }
})

/**
 * GitHub, GitLab, Linear, Jira, Confluence, Figma, Airtable, Asana.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const developer: ReadonlyArray<Preset> = [
  {
    name: "github",
    title: "GitHub (OAuth app)",
    docs: "https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps",
    grants: ["authorization_code", "device_code"],
    accept: "application/json",
    rotation: "never",
    revocation: "none",
    answer: { body: "form", errors: "error_200", expiresIn: "absent" },
    notes:
      "Tokens never expire and there is no refresh token; errors come with HTTP 200. The answer is form-encoded unless Accept asks for JSON.",
    settings: {
      type: "oauth",
      name: "GitHub",
      authorizationEndpoint: "https://github.com/login/oauth/authorize",
      tokenEndpoint: "https://github.com/login/oauth/access_token",
      deviceAuthorizationEndpoint: "https://github.com/login/device/code",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["read:user"] },
      defaultTokenLifetimeSeconds: 28800
    }
  },
  {
    name: "github-app",
    title: "GitHub App",
    docs: "https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app",
    grants: ["authorization_code", "refresh_token", "install", "app_installation"],
    accept: "application/json",
    rotation: "always",
    revocation: "none",
    answer: { body: "form", errors: "error_200", expiresIn: "number" },
    requires: [
      { field: "appTokens.appId", hint: "the GitHub App's app id (a number), the iss of its JWT" },
      { field: "privateKey", hint: "the GitHub App's private key (PEM), for its RS256 JWT" }
    ],
    notes:
      "Installation tokens (1 hour) come from the app's JWT; user tokens expire after 8 hours and rotate with their refresh token (6 months). Install at https://github.com/apps/<slug>/installations/new.",
    settings: {
      type: "oauth",
      name: "GitHub App",
      authorizationEndpoint: "https://github.com/login/oauth/authorize",
      tokenEndpoint: "https://github.com/login/oauth/access_token",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultTokenLifetimeSeconds: 28800,
      signingAlgorithm: "RS256",
      appTokens: {
        type: "github_app",
        tokenEndpoint: "https://api.github.com/app/installations/{tenantId}/access_tokens"
      },
      installations: { required: true, tenantIdFrom: { callback: "installation_id" } }
    }
  },
  {
    name: "gitlab",
    title: "GitLab",
    docs: "https://docs.gitlab.com/api/oauth2/",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    rotation: "always",
    revocation: "token",
    answer: standardAnswer,
    tenant: { description: "the GitLab host, for a self-managed instance", default: "gitlab.com" },
    settings: {
      type: "oauth",
      name: "GitLab",
      authorizationEndpoint: "https://{tenantId}/oauth/authorize",
      tokenEndpoint: "https://{tenantId}/oauth/token",
      revocationEndpoint: "https://{tenantId}/oauth/revoke",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["read_api"] },
      defaultTokenLifetimeSeconds: 7200
    }
  },
  {
    name: "linear",
    title: "Linear",
    docs: "https://linear.app/developers/oauth-2-0-authentication",
    grants: ["authorization_code", "refresh_token", "client_credentials"],
    accept: "application/json",
    rotation: "always",
    revocation: "token",
    answer: standardAnswer,
    notes:
      "Refresh tokens for every application since April 2026; client credentials act as the app (actor=app). Scopes are comma-separated in the authorization URL.",
    settings: {
      type: "oauth",
      name: "Linear",
      authorizationEndpoint: "https://linear.app/oauth/authorize",
      tokenEndpoint: "https://api.linear.app/oauth/token",
      revocationEndpoint: "https://api.linear.app/oauth/revoke",
      scopeSeparator: ",",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { app: ["read"], user: ["read"] },
      defaultTokenLifetimeSeconds: 86400
    }
  },
  atlassian("jira", "Jira (Atlassian)", "https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/", [
    "read:jira-work",
    "read:jira-user"
  ]),
  atlassian(
    "confluence",
    "Confluence (Atlassian)",
    "https://developer.atlassian.com/cloud/confluence/oauth-2-3lo-apps/",
    ["read:confluence-content.summary"]
  ),
  {
    name: "figma",
    title: "Figma",
    docs: "https://developers.figma.com/docs/rest-api/authentication/",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    rotation: "never",
    revocation: "none",
    answer: standardAnswer,
    notes:
      "Refreshes go to their own endpoint, /v1/oauth/refresh, whose answer has no refresh token: the one from the authorization stays.",
    settings: {
      type: "oauth",
      name: "Figma",
      authorizationEndpoint: "https://www.figma.com/oauth",
      tokenEndpoint: "https://api.figma.com/v1/oauth/token",
      refreshEndpoint: "https://api.figma.com/v1/oauth/refresh",
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: { user: ["file_content:read"] },
      defaultTokenLifetimeSeconds: 7776000
    }
  },
  {
    name: "airtable",
    title: "Airtable",
    docs: "https://airtable.com/developers/web/api/oauth-reference",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    rotation: "always",
    revocation: "none",
    answer: standardAnswer,
    notes: "PKCE is required (the broker always sends it); refresh tokens are single-use and last 60 days.",
    settings: {
      type: "oauth",
      name: "Airtable",
      authorizationEndpoint: "https://airtable.com/oauth2/v1/authorize",
      tokenEndpoint: "https://airtable.com/oauth2/v1/token",
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: { user: ["data.records:read", "schema.bases:read"] },
      defaultTokenLifetimeSeconds: 3600
    }
  },
  {
    name: "asana",
    title: "Asana",
    docs: "https://developers.asana.com/docs/oauth",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    rotation: "never",
    revocation: "grant",
    answer: standardAnswer,
    settings: {
      type: "oauth",
      name: "Asana",
      authorizationEndpoint: "https://app.asana.com/-/oauth_authorize",
      tokenEndpoint: "https://app.asana.com/-/oauth_token",
      revocationEndpoint: "https://app.asana.com/-/oauth_revoke",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultTokenLifetimeSeconds: 3600
    }
  }
]
