/**
 * The dashboard's shared views: the layout of every page (its navigation and
 * sign-out), the pages shown before signing in, and the small pieces the
 * pages are made of (forms with their CSRF token, tables, status labels).
 *
 * @internal
 */
import { ADMIN_TOKEN_VARIABLE } from "../../AdminToken.js"
import { CSRF_FIELD } from "./csrf.js"
import { type Html, html, type Interpolated } from "./html.js"
import { DASHBOARD_PATH } from "./session.js"

/** Which part of the dashboard a page belongs to, for the navigation. */
export type Section = "overview" | "projects" | "try" | "none"

const NAV: ReadonlyArray<{ readonly section: Section; readonly href: string; readonly label: string }> = [
  { section: "overview", href: DASHBOARD_PATH, label: "Overview" },
  { section: "projects", href: `${DASHBOARD_PATH}/projects`, label: "Projects" },
  { section: "try", href: `${DASHBOARD_PATH}/try`, label: "Try it" }
]

/** The CSRF token's hidden field, in every form that changes something. */
export const csrfField = (csrf: string): Html => html`<input type="hidden" name="${CSRF_FIELD}" value="${csrf}">`

/** A page of the dashboard: head, navigation (signed in), the content. */
export const layout = (
  title: string,
  content: Html,
  signedIn: { readonly section: Section; readonly csrf: string } | undefined
): Html => html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Connect broker</title>
<link rel="stylesheet" href="${DASHBOARD_PATH}/assets/dashboard.css">
<script src="${DASHBOARD_PATH}/assets/dashboard.js" defer></script></head>
<body><header><span class="brand">Connect broker</span>
${
  signedIn === undefined
    ? ""
    : html`<nav aria-label="Dashboard"><ul>${NAV.map(
        (item) =>
          html`<li><a href="${item.href}"${item.section === signedIn.section ? html` aria-current="page"` : ""}>${item.label}</a></li>`
      )}</ul></nav>
<form class="inline" method="post" action="${DASHBOARD_PATH}/sign-out">${csrfField(signedIn.csrf)}<button class="secondary" type="submit">Sign out</button></form>`
}
</header><main id="main"><h1>${title}</h1>
${content}
</main></body></html>`

/** The page of a dashboard without an admin token: how to enable it, nothing else. */
export const disabledPage = (): Html =>
  layout(
    "Dashboard disabled",
    html`<p class="notice">The dashboard is for the holder of the admin token, and this broker has none.</p>
<p>To enable it, set <code>${ADMIN_TOKEN_VARIABLE}</code> in the broker's environment to a long random secret
(for example the output of <code>openssl rand -base64 32</code>) and restart the broker. Then sign in here with that token.</p>`,
    undefined
  )

/** The sign-in form; `problem` says why the last attempt failed. */
export const signInPage = (problem: string | undefined): Html =>
  layout(
    "Sign in",
    html`${problem === undefined ? "" : html`<p class="notice bad" role="alert">${problem}</p>`}
<form method="post" action="${DASHBOARD_PATH}/sign-in">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required size="40">
<p><button type="submit">Sign in</button></p></form>
<p class="muted">The admin token is the broker's <code>${ADMIN_TOKEN_VARIABLE}</code>. The session lasts a few hours, in a cookie only this broker can read.</p>`,
    undefined
  )

/** A page that only says something: a refusal, or what an action did. */
export const messagePage = (
  title: string,
  text: Interpolated,
  signedIn: { readonly section: Section; readonly csrf: string } | undefined,
  back: { readonly href: string; readonly label: string } = { href: DASHBOARD_PATH, label: "Back to the overview" }
): Html => layout(title, html`<p class="notice">${text}</p><p><a href="${back.href}">${back.label}</a></p>`, signedIn)

/** A table with a caption-less header row; `rows` already rendered. */
export const table = (label: string, headers: ReadonlyArray<string>, rows: ReadonlyArray<Html>, empty: string): Html =>
  rows.length === 0
    ? html`<p class="muted">${empty}</p>`
    : html`<div class="table" role="region" aria-label="${label}" tabindex="0"><table><thead><tr>${headers.map(
        (h) => html`<th scope="col">${h}</th>`
      )}</tr></thead><tbody>${rows}</tbody></table></div>`

/** A grant's status as a label, with why when it can give nothing more. */
export const statusLabel = (status: string, why: string | undefined): Html =>
  html`<span class="status-${status}">${status}</span>${why === undefined ? "" : html`<br><span class="muted">${why}</span>`}`

/** A path of the dashboard, its segments percent-encoded. */
export const dashboardPath = (...segments: ReadonlyArray<string>): string =>
  [DASHBOARD_PATH, ...segments.map(encodeURIComponent)].join("/")
