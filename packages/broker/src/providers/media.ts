/**
 * Presets of media services: Spotify, Twitch.
 *
 * @since 0.2.0
 */
import { standardAnswer } from "./answers.js"
import type { Preset } from "./Presets.js"

/**
 * Spotify and Twitch.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const media: ReadonlyArray<Preset> = [
  {
    name: "spotify",
    title: "Spotify",
    docs: "https://developer.spotify.com/documentation/web-api/tutorials/code-flow",
    grants: ["authorization_code", "refresh_token", "client_credentials"],
    accept: "application/json",
    rotation: "optional",
    revocation: "none",
    answer: standardAnswer,
    notes:
      "A refresh may or may not return a new refresh token; the old one is kept when none comes. Refresh tokens expire 6 months after the user's authorization, however often they are used.",
    settings: {
      type: "oauth",
      name: "Spotify",
      authorizationEndpoint: "https://accounts.spotify.com/authorize",
      tokenEndpoint: "https://accounts.spotify.com/api/token",
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: { user: ["user-read-email"] },
      defaultTokenLifetimeSeconds: 3600
    }
  },
  {
    name: "twitch",
    title: "Twitch",
    docs: "https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/",
    grants: ["authorization_code", "refresh_token", "client_credentials", "device_code"],
    accept: "application/json",
    rotation: "optional",
    revocation: "token",
    answer: { body: "json", errors: "message", expiresIn: "number", scope: "array" },
    notes:
      "The granted scope comes back as an array; errors as {status, message}, the code in message (authorization_pending). The device flow names its scopes in scopes.",
    settings: {
      type: "oauth",
      name: "Twitch",
      authorizationEndpoint: "https://id.twitch.tv/oauth2/authorize",
      tokenEndpoint: "https://id.twitch.tv/oauth2/token",
      revocationEndpoint: "https://id.twitch.tv/oauth2/revoke",
      deviceAuthorizationEndpoint: "https://id.twitch.tv/oauth2/device",
      deviceScopeParameter: "scopes",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultScopes: { user: ["user:read:email"] },
      defaultTokenLifetimeSeconds: 14400
    }
  }
]
