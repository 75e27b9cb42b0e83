/**
 * Presets of workspace tools: Slack, Discord, Notion, Zoom, Intercom, Dropbox, Box.
 *
 * @since 0.2.0
 */
import { standardAnswer } from "./answers.js"
import type { Preset } from "./Presets.js"

/**
 * Slack, Discord, Notion, Zoom, Intercom, Dropbox, Box.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const workspace: ReadonlyArray<Preset> = [
  {
    name: "slack",
    title: "Slack",
    docs: "https://docs.slack.dev/authentication/using-token-rotation",
    grants: ["authorization_code", "refresh_token", "install"],
    accept: "application/json",
    rotation: "optional",
    revocation: "token",
    answer: { body: "json", errors: "ok_false", expiresIn: "number", userToken: "authed_user" },
    notes:
      "A workspace installs the bot (its id, team.id, is the installation); a user's scopes go in user_scope and their token comes under authed_user. Tokens expire (12 hours) and refresh tokens rotate only with token rotation on.",
    settings: {
      type: "oauth",
      name: "Slack",
      authorizationEndpoint: "https://slack.com/oauth/v2/authorize",
      tokenEndpoint: "https://slack.com/api/oauth.v2.access",
      revocationEndpoint: "https://slack.com/api/auth.revoke",
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: { app: ["chat:write"], user: ["users:read"] },
      defaultTokenLifetimeSeconds: 43200,
      userTokenMember: "authed_user",
      installations: { required: true, tenantIdFrom: { tokenResponse: "team.id" } }
    }
  },
  {
    name: "discord",
    title: "Discord",
    docs: "https://discord.com/developers/docs/topics/oauth2",
    grants: ["authorization_code", "refresh_token", "client_credentials"],
    accept: "application/json",
    // A refresh answers a new refresh token with the access token (the "access token response" of the docs).
    rotation: "always",
    // "When you revoke a token, any active access or refresh tokens associated with that authorization will be
    // revoked" (the docs' Token Revocation Example).
    revocation: "grant",
    answer: standardAnswer,
    notes:
      "Revoking any token ends the whole authorization. Client credentials give the bot owner's token, without a refresh token; a team's application may ask only identify and applications.commands.update.",
    settings: {
      type: "oauth",
      name: "Discord",
      // Endpoints and authentication methods (Basic or form, at the token and revocation endpoints) as the
      // authorization server metadata publishes them: https://discord.com/.well-known/oauth-authorization-server
      authorizationEndpoint: "https://discord.com/api/oauth2/authorize",
      tokenEndpoint: "https://discord.com/api/oauth2/token",
      revocationEndpoint: "https://discord.com/api/oauth2/token/revoke",
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: { app: ["identify"], user: ["identify"] },
      defaultTokenLifetimeSeconds: 604800
    }
  },
  {
    name: "notion",
    title: "Notion",
    docs: "https://developers.notion.com/reference/refresh-a-token",
    grants: ["authorization_code", "refresh_token", "install"],
    accept: "application/json",
    rotation: "always",
    revocation: "token",
    answer: { body: "json", errors: "oauth", expiresIn: "absent" },
    notes:
      "A token is for one workspace (workspace_id in the answer). A refresh hands out a new access token and a new refresh token. Revocation (https://developers.notion.com/reference/revoke-token) takes a JSON body and a Notion-Version header.",
    settings: {
      type: "oauth",
      name: "Notion",
      authorizationEndpoint: "https://api.notion.com/v1/oauth/authorize",
      tokenEndpoint: "https://api.notion.com/v1/oauth/token",
      revocationEndpoint: "https://api.notion.com/v1/oauth/revoke",
      revocationRequest: { body: "json", headers: { "Notion-Version": "2025-09-03" } },
      authorizationParams: { owner: "user" },
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultTokenLifetimeSeconds: 3600,
      installations: { tenantIdFrom: { tokenResponse: "workspace_id" } }
    }
  },
  {
    name: "zoom",
    title: "Zoom",
    docs: "https://developers.zoom.us/docs/integrations/oauth/",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    // Only the latest refresh token works; an earlier one is refused ("Invalid Token!"), with no grace period:
    // https://devsupport.zoom.us/hc/en-us/articles/360060332931-Extending-the-expiration-for-an-OAuth-access-token
    rotation: "always",
    // Revoking a token uninstalls the app for the user (Zoom staff, with the app.deauthorized event that follows):
    // https://devforum.zoom.us/t/zoom-api-how-to-revoke-app-access-when-user-wants-to-disconnect-your-app-and-zoom-app/18432
    revocation: "grant",
    answer: standardAnswer,
    notes:
      "Access tokens last 1 hour; each refresh returns a new refresh token and the previous one stops working. Revoking a token uninstalls the app for that user.",
    settings: {
      type: "oauth",
      name: "Zoom",
      authorizationEndpoint: "https://zoom.us/oauth/authorize",
      // Token and revocation requests authenticate with HTTP Basic (client id and secret):
      // https://developers.zoom.us/docs/rooms/oauth/ and Zoom's API collection,
      // https://developers.qodex.ai/zoom-public/get-started-fast-with-zoom-apis/api-authorization-authentication-legacy-applications-oauth-app-oauth-2-0/revoke-an-access-token-1
      tokenEndpoint: "https://zoom.us/oauth/token",
      revocationEndpoint: "https://zoom.us/oauth/revoke",
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultTokenLifetimeSeconds: 3600
    }
  },
  {
    name: "intercom",
    title: "Intercom",
    docs: "https://developers.intercom.com/docs/build-an-integration/learn-more/authentication/setting-up-oauth",
    grants: ["authorization_code"],
    accept: "application/json",
    rotation: "never",
    revocation: "none",
    answer: { body: "json", errors: "oauth", expiresIn: "absent" },
    notes: "Tokens do not expire and there is no refresh token; permissions are set on the app, not as scopes.",
    settings: {
      type: "oauth",
      name: "Intercom",
      authorizationEndpoint: "https://app.intercom.com/oauth",
      tokenEndpoint: "https://api.intercom.io/auth/eagle/token",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultTokenLifetimeSeconds: 86400
    }
  },
  {
    name: "dropbox",
    title: "Dropbox",
    docs: "https://developers.dropbox.com/oauth-guide",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    // A refresh answers access_token, token_type and expires_in only: the refresh token stays:
    // https://dropbox.tech/developers/using-oauth-2-0-with-offline-access
    rotation: "never",
    // /2/auth/token/revoke takes the access token as a bearer, not the RFC 7009 form the broker sends (it also
    // ends the refresh token): https://dropbox.github.io/dropbox-sdk-java/api-docs/v8.0.1/com/dropbox/core/v2/auth/DbxUserAuthRequests.html
    revocation: "none",
    answer: standardAnswer,
    notes:
      "A refresh token comes only with token_access_type=offline, which is sent; it does not rotate. Dropbox's /2/auth/token/revoke is called with the access token as a bearer, not as RFC 7009, so no revocation endpoint is set.",
    settings: {
      type: "oauth",
      name: "Dropbox",
      authorizationEndpoint: "https://www.dropbox.com/oauth2/authorize",
      tokenEndpoint: "https://api.dropboxapi.com/oauth2/token",
      authorizationParams: { token_access_type: "offline" },
      // The app key and secret as HTTP Basic (curl -u APP_KEY:APP_SECRET in the guide above).
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultTokenLifetimeSeconds: 14400
    }
  },
  {
    name: "box",
    title: "Box",
    docs: "https://developer.box.com/guides/authentication/oauth2/",
    grants: ["authorization_code", "refresh_token"],
    accept: "application/json",
    rotation: "always",
    revocation: "grant",
    answer: standardAnswer,
    notes: "A refresh token is good once and for 60 days.",
    settings: {
      type: "oauth",
      name: "Box",
      authorizationEndpoint: "https://account.box.com/api/oauth2/authorize",
      tokenEndpoint: "https://api.box.com/oauth2/token",
      revocationEndpoint: "https://api.box.com/oauth2/revoke",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultTokenLifetimeSeconds: 3600
    }
  }
]
