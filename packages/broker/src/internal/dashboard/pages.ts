/**
 * The dashboard's pages: the overview, a connector, a confirmation before a
 * change, the projects, and "Try it". Each is a function of what it shows;
 * every value goes through `html`, so it is escaped.
 *
 * @internal
 */
import type { ConnectorView, GrantView, TokenView } from "../../AdminApi.js"
import type { BrokerEvent } from "../../Events.js"
import { barChart } from "./charts.js"
import type { ConnectorPage, Overview, ProjectEntry } from "./data.js"
import { GRANTS_PER_PAGE } from "./data.js"
import { type Html, html, time } from "./html.js"
import { csrfField, dashboardPath, layout, statusLabel, table } from "./views.js"

/** The session's CSRF token, which every form carries. */
type Csrf = string

const eventRow = (event: BrokerEvent): Html =>
  html`<tr><td>${time(event.occurredAt)}</td><td>${event.kind}</td><td>${event.connector ?? ""}</td><td>${event.projectId ?? ""}</td><td><code>${event.subject ?? ""}</code></td><td><code>${Object.entries(
    event.data
  )
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(" ")}</code></td></tr>`

/** The overview: connectors with their counts, the providers' health, the charts, the latest events. */
export const overviewPage = (overview: Overview, csrf: Csrf): Html => {
  const rows = overview.connectors.map(
    (s) =>
      html`<tr><td><a href="${dashboardPath("connectors", s.connector.uid)}">${s.connector.uid}</a><br><span class="muted">${s.connector.name}</span></td>
<td>${s.installations}</td><td class="ok">${s.grants.active}</td><td class="bad">${s.grants.invalid + s.grants.lost}</td><td>${s.grants.revoked}</td>
<td>${s.issuedToday}</td><td${s.failuresLastHour > 0 ? html` class="bad"` : ""}>${s.failuresLastHour}</td></tr>`
  )
  const health = overview.connectors.map(
    (s) =>
      html`<tr><td>${s.connector.uid}</td><td>${time(s.lastSuccess)}</td><td>${time(s.lastFailure?.at)}</td><td>${s.lastFailure?.why ?? ""}</td></tr>`
  )
  return layout(
    "Overview",
    html`<section aria-labelledby="connectors"><h2 id="connectors">Connectors</h2>
${table(
  "Connectors",
  ["Connector", "Installations", "Valid grants", "Invalid or lost", "Revoked", "Tokens issued today", "Failures (1 h)"],
  rows,
  "No connectors yet: declare them in the configuration file or through the admin API."
)}</section>
<section aria-labelledby="health"><h2 id="health">Providers' health</h2>
<p class="muted">From the last day's events: a token from the provider, a refresh or a completed authorization is a success; a failed authorization or a grant the provider refused is a failure.</p>
${table("Providers' health", ["Connector", "Last success", "Last failure", "Why"], health, "No connectors.")}</section>
<section aria-labelledby="charts"><h2 id="charts">Token requests and failures, last 24 hours</h2>
<div class="cards">${overview.connectors.map((s) => html`<div class="card"><h3>${s.connector.uid}</h3>${barChart(s.connector.uid, s.series)}</div>`)}</div></section>
<section aria-labelledby="events"><h2 id="events">Recent events</h2>
${table("Recent events", ["Time", "Kind", "Connector", "Project", "Subject", "Data"], overview.recent.map(eventRow), "No events yet.")}</section>`,
    { section: "overview", csrf }
  )
}

/** A connector's settings: never a secret, only whether it is set. */
const settings = (c: ConnectorView): Html =>
  html`<dl><dt>Name</dt><dd>${c.name}</dd><dt>Id</dt><dd><code>${c.id}</code></dd><dt>Type</dt><dd>${c.type}</dd><dt>Service</dt><dd>${c.service}</dd>
<dt>Client id</dt><dd><code>${c.clientId}</code></dd><dt>Client secret</dt><dd>set (never shown)</dd>
<dt>Private key</dt><dd>${c.hasPrivateKey ? "set (never shown)" : "not set"}</dd>
<dt>Token endpoint</dt><dd><code>${c.tokenEndpoint}</code></dd>
<dt>Authorization endpoint</dt><dd><code>${c.authorizationEndpoint ?? "—"}</code></dd>
<dt>Revocation endpoint</dt><dd><code>${c.revocationEndpoint ?? "—"}</code></dd>
<dt>Authentication</dt><dd>${c.tokenEndpointAuthMethod}</dd>
<dt>Default scopes</dt><dd>app: ${(c.defaultScopes.app ?? []).join(" ") || "—"}; user: ${(c.defaultScopes.user ?? []).join(" ") || "—"}</dd>
<dt>Token lifetime</dt><dd>${c.defaultTokenLifetimeSeconds} s</dd>
<dt>Installations required</dt><dd>${c.installationsRequired ? "yes" : "no"}</dd></dl>`

const grantRow = (uid: string, g: GrantView): Html =>
  html`<tr><td><code>${g.user ?? g.subject}</code><br><span class="muted">${g.project ?? "installation"}${g.installationId === undefined ? "" : ` · ${g.installationId}`}</span></td>
<td>${statusLabel(g.status, g.lostReason)}</td><td>${time(g.updatedAt)}</td>
<td>${g.hasRefreshToken ? `refresh token${g.refreshExpiresAt === undefined ? "" : ` until ${time(g.refreshExpiresAt)}`}` : `access token until ${time(g.accessExpiresAt)}`}</td>
<td>${g.status === "active" ? html`<a class="button secondary" href="${dashboardPath("connectors", uid, "grants", g.id, "revoke")}">Revoke<span class="muted"> grant of ${g.user ?? g.subject}</span></a>` : ""}</td></tr>`

const tokenRow = (uid: string, t: TokenView): Html =>
  html`<tr><td><code>${t.id}</code></td><td>${t.project} (${t.environment})</td><td><code>${t.subject}</code></td><td>${time(t.expiresAt)}</td>
<td><a class="button secondary" href="${dashboardPath("connectors", uid, "tokens", t.id, "revoke")}">Revoke<span class="muted"> token ${t.id}</span></a></td></tr>`

const pager = (uid: string, page: ConnectorPage): Html => {
  const index = Math.floor(page.grants.offset / GRANTS_PER_PAGE)
  const last = Math.max(0, Math.ceil(page.grants.total / GRANTS_PER_PAGE) - 1)
  const link = (to: number, label: string) => {
    const query = new URLSearchParams({ ...(page.search === "" ? {} : { user: page.search }), page: String(to) })
    return html`<a href="${dashboardPath("connectors", uid)}?${query.toString()}#grants">${label}</a>`
  }
  return html`<div class="pager"><span>Page ${index + 1} of ${last + 1} (${page.grants.total} grants)</span>${index > 0 ? link(index - 1, "Previous page") : ""}${index < last ? link(index + 1, "Next page") : ""}</div>`
}

/** A connector: settings, links, installations, grants (searchable, paged), active tokens. */
export const connectorView = (page: ConnectorPage, csrf: Csrf): Html => {
  const c = page.connector
  const installations = (c.installations ?? []).map(
    (i) =>
      html`<tr><td><code>${i.id}</code></td><td>${i.tenantId ?? ""}</td><td>${i.default ? "yes" : ""}</td><td>${i.source}</td>
<td><a class="button secondary" href="${dashboardPath("connectors", c.uid, "installations", i.id, "remove")}">Remove<span class="muted"> installation ${i.id}</span></a></td></tr>`
  )
  return layout(
    c.uid,
    html`<section aria-labelledby="settings"><h2 id="settings">Settings</h2>${settings(c)}</section>
<section aria-labelledby="links"><h2 id="links">Links</h2>${table(
      "Links",
      ["Project", "Environments"],
      (c.links ?? []).map((l) => html`<tr><td>${l.project}</td><td>${l.environments.join(", ")}</td></tr>`),
      "Not linked to any project."
    )}</section>
<section aria-labelledby="installations"><h2 id="installations">Installations</h2>${table("Installations", ["Id", "Tenant", "Default", "Source", ""], installations, "No installations.")}</section>
<section aria-labelledby="grants"><h2 id="grants">Grants</h2>
<form method="get" action="${dashboardPath("connectors", c.uid)}" class="row"><div><label for="user">User id</label>
<input id="user" name="user" type="search" value="${page.search}"></div><button type="submit">Search</button>${page.search === "" ? "" : html`<a href="${dashboardPath("connectors", c.uid)}">Clear</a>`}</form>
${table(
  "Grants",
  ["User", "Status", "Last refresh or change", "Holds", ""],
  page.grants.grants.map((g) => grantRow(c.uid, g)),
  page.search === "" ? "No grants yet." : "No grant matches this user id."
)}
${pager(c.uid, page)}</section>
<section aria-labelledby="tokens"><h2 id="tokens">Active tokens</h2>${table(
      "Active tokens",
      ["Id", "Project", "Subject", "Expires", ""],
      page.tokens.map((t) => tokenRow(c.uid, t)),
      "No active tokens."
    )}</section>`,
    { section: "overview", csrf }
  )
}

/** The confirmation before a change: what will happen, a button that does it, and a way back. */
export const confirmPage = (
  confirm: { readonly title: string; readonly text: string; readonly action: string; readonly button: string },
  back: string,
  csrf: Csrf
): Html =>
  layout(
    confirm.title,
    html`<p class="notice">${confirm.text}</p>
<form method="post" action="${confirm.action}">${csrfField(csrf)}<button class="danger" type="submit">${confirm.button}</button>
<a class="button secondary" href="${back}">Cancel</a></form>`,
    { section: "overview", csrf }
  )

/** The projects: environments and keys (prefixes only), links, return URLs; a new key is shown once. */
export const projectsPage = (
  entries: ReadonlyArray<ProjectEntry>,
  csrf: Csrf,
  created: { readonly project: string; readonly environment: string; readonly key: string } | undefined
): Html =>
  layout(
    "Projects",
    html`${
      created === undefined
        ? ""
        : html`<div class="notice" role="status"><p>New key for ${created.project} (${created.environment}). Copy it now: it is shown once, then only its first characters.</p><p class="secret" id="new-key">${created.key}</p></div>`
    }
${entries.length === 0 ? html`<p class="muted">No projects yet.</p>` : ""}
${entries.map(
  (
    e
  ) => html`<section aria-labelledby="project-${e.project.id}"><h2 id="project-${e.project.id}">${e.project.name} <span class="muted">(${e.project.id})</span></h2>
<dl><dt>Return URLs</dt><dd>${e.project.returnUrls.length === 0 ? "none" : e.project.returnUrls.join(", ")}</dd>
<dt>Confirms users</dt><dd>${e.project.confirmUsers ? "yes" : "no"}</dd></dl>
<h3>Keys</h3>${table(
    `Keys of ${e.project.id}`,
    ["Environment", "Key", "Created"],
    e.keys.map(
      (k) =>
        html`<tr><td>${k.environment}</td><td><code>${k.prefix === undefined ? "(too short to show any of it)" : `${k.prefix}…`}</code></td><td>${time(k.createdAt)}</td></tr>`
    ),
    "No keys."
  )}
<form method="post" action="${dashboardPath("projects", e.project.id, "keys")}" class="row">${csrfField(csrf)}<div><label for="env-${e.project.id}">Environment</label>
<input id="env-${e.project.id}" name="environment" required value="production"></div><button type="submit">Create a key<span class="muted"> for ${e.project.id}</span></button></form>
<h3>Links</h3>${table(
    `Links of ${e.project.id}`,
    ["Connector", "Environments"],
    e.links.map(
      (l) =>
        html`<tr><td><a href="${dashboardPath("connectors", l.connector)}">${l.connector}</a></td><td>${l.environments.join(", ")}</td></tr>`
    ),
    "No connector linked."
  )}</section>`
)}`,
    { section: "projects", csrf }
  )

/** A link a test can be run through, as one form value. */
export interface TryTarget {
  readonly connector: string
  readonly project: string
  readonly environment: string
}

/** The form value of a target: its parts percent-encoded, space separated. */
export const targetValue = (t: TryTarget): string =>
  [t.connector, t.project, t.environment].map(encodeURIComponent).join(" ")

const targetSelect = (id: string, targets: ReadonlyArray<TryTarget>): Html =>
  html`<label for="${id}">Connector, project and environment</label><select id="${id}" name="target" required>${targets.map(
    (t) => html`<option value="${targetValue(t)}">${t.connector} — ${t.project} (${t.environment})</option>`
  )}</select>`

/** What "Try it" shows: the forms, an authorization under way, a token obtained. */
export interface TryState {
  readonly authorization?: {
    readonly url?: string
    readonly request: string
    readonly status: string
    readonly user: string
  }
  readonly token?: { readonly shortened: string; readonly expiresAt: number; readonly connector: string }
  readonly problem?: string
}

/** "Try it": authorize a test user and watch it complete; get an app token. */
export const tryPage = (targets: ReadonlyArray<TryTarget>, state: TryState, csrf: Csrf): Html =>
  layout(
    "Try it",
    html`${state.problem === undefined ? "" : html`<p class="notice bad" role="alert">${state.problem}</p>`}
${targets.length === 0 ? html`<p class="muted">Link a connector to a project first.</p>` : ""}
<section aria-labelledby="authorize"><h2 id="authorize">Authorize a test user</h2>
${
  state.authorization === undefined
    ? ""
    : html`<div class="notice" data-poll="${dashboardPath("try", "status")}"><p>Authorization <code>${state.authorization.request}</code> for ${state.authorization.user}: <output data-status>${state.authorization.status}</output></p>
${state.authorization.url === undefined ? "" : html`<p><a id="authorize-link" href="${state.authorization.url}" target="_blank" rel="noopener noreferrer">Open the authorization</a> (as the test user), then watch its status here.</p>`}
<p><a href="${dashboardPath("try")}">Check the status again</a></p></div>`
}
<form method="post" action="${dashboardPath("try", "authorize")}">${csrfField(csrf)}${targetSelect("authorize-target", targets)}
<label for="test-user">Test user id</label><input id="test-user" name="user" required value="test-user">
<p><button type="submit">Start the authorization</button></p></form></section>
<section aria-labelledby="app-token"><h2 id="app-token">Get an app token</h2>
${
  state.token === undefined
    ? ""
    : html`<p class="notice" role="status">Token for ${state.token.connector}: <code id="app-token-value">${state.token.shortened}</code>, expires ${time(state.token.expiresAt)}</p>`
}
<form method="post" action="${dashboardPath("try", "token")}">${csrfField(csrf)}${targetSelect("token-target", targets)}
<p><button type="submit">Get an app token</button></p></form></section>`,
    { section: "try", csrf }
  )
