// The DreamOps dashboard: a client of the public /v1 API and nothing else.
//
// Safe by construction: every node is built with createElement and every piece of text goes in as a text node
// (the page's policy requires Trusted Types, so an HTML string sink would throw rather than parse). Bidi and
// control characters are shown as visible code points, so a title cannot reorder or hide what it says. The
// credential lives in sessionStorage (gone with the tab), travels only in the Authorization header, never in a
// URL, and the API takes no cookies.

const SESSION = "dreamops.session";
const PKCE = "dreamops.pkce";
const ROLES = ["viewer", "responder", "admin", "operator"];
const STATES = ["received", "analyzing", "awaiting_approval", "executing", "verifying", "resolved", "escalated",
  "rolled_back", "failed", "ignored"];
const OPEN = ["received", "analyzing", "awaiting_approval", "executing", "verifying"];
const ACTIONS = ["RESTART", "SCALE_UP", "ROLLBACK", "RAISE_MEMORY_LIMIT", "DELETE_POD"];
const ENUMS = { autonomy: ["off", "approval", "auto"], max_risk: ["low", "medium", "high"] };

// ------------------------------------------------------------------------------------------------ text and nodes

// Bidi controls, zero-width marks and C0/C1 controls (but tab and newline) become visible code points.
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
export function literal(s) {
  return String(s ?? "").replace(HIDDEN, (c) => `⟦U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟧`);
}

function add(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(literal(k)));
  }
  return el;
}

// h("a", {href, class, on: {click}}, ...children). Attributes are set one by one; handlers only through `on`.
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (/^on/i.test(k) || k === "style" || k === "srcdoc") {
      throw new Error(`attribute ${k} is not allowed`);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "value") {
      el.value = v;
    } else if (k === "checked") {
      el.checked = Boolean(v);
    } else if (k === "href" || k === "src") {
      el.setAttribute(k, safeUrl(v));
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  return add(el, kids);
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return add(el, kids);
}

// Only http(s) and in-page links; anything else (javascript:, data:) becomes an inert "#".
function safeUrl(u) {
  const v = String(u ?? "");
  if (v.startsWith("#") || v.startsWith("/")) return v.startsWith("//") ? "#" : v;
  try {
    const p = new URL(v);
    return p.protocol === "https:" || p.protocol === "http:" ? p.href : "#";
  } catch {
    return "#";
  }
}

const $ = (sel) => document.querySelector(sel);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------ time

const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const REL = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function ago(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  const secs = Math.round((t - Date.now()) / 1000);
  const a = Math.abs(secs);
  if (a < 45) return REL.format(secs, "second");
  if (a < 2700) return REL.format(Math.round(secs / 60), "minute");
  if (a < 64800) return REL.format(Math.round(secs / 3600), "hour");
  return REL.format(Math.round(secs / 86400), "day");
}

function local(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso ?? "");
  return new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: `${local(iso)} (${ZONE})` }, ago(iso), h("span", { class: "muted" }, ` · ${local(iso)}`));
}

function duration(secs) {
  if (secs === null || secs === undefined || Number.isNaN(secs)) return "—";
  const v = Math.max(0, Math.round(secs));
  if (v < 60) return `${v}s`;
  if (v < 3600) return `${Math.floor(v / 60)}m ${v % 60}s`;
  return `${Math.floor(v / 3600)}h ${Math.floor((v % 3600) / 60)}m`;
}

// ------------------------------------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let session = null; // { token }
let me = null; // GET /v1/whoami
let team = null; // the team the pages show
let authConfig = { oidc: null, sign_in_codes: false, live: "poll", poll_secs: 5 };

function loadSession() {
  try {
    session = JSON.parse(sessionStorage.getItem(SESSION) || "null");
  } catch {
    session = null;
  }
}

function saveSession(token) {
  session = { token };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
}

async function api(method, path, opts = {}) {
  const headers = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (opts.ifMatch) headers["If-Match"] = opts.ifMatch;
  if (opts.ifNoneMatch) headers["If-None-Match"] = opts.ifNoneMatch;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", `The server did not answer (${e.message}).`);
  }
  const etag = resp.headers.get("ETag");
  if (resp.status === 304) return { status: 304, etag, body: null };
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const err = body && body.error ? body.error : {};
    const e = new ApiError(resp.status, err.code || `http_${resp.status}`, err.message || resp.statusText, err.details);
    if (resp.status === 401 && session && !opts.signingIn) {
      signOut(`Signed out: ${e.message}.`);
    }
    throw e;
  }
  return { status: resp.status, etag, body };
}

const teamPath = (rest = "") => `/v1/teams/${encodeURIComponent(team)}${rest}`;
const role = () => (me ? ROLES.indexOf(me.role) : -1);
const can = (r) => role() >= ROLES.indexOf(r);

// The field-by-field reasons of a 422, one line each.
function problems(e) {
  return Array.isArray(e.details) ? e.details.map((d) => h("div", {}, `${d.field}: ${d.message}`)) : [];
}

// ------------------------------------------------------------------------------------------------ banner

function notice(kind, ...text) {
  return h("div", { class: `notice ${kind}`, role: kind === "bad" ? "alert" : "status" }, ...text);
}

function banner(...nodes) {
  $("#banner").replaceChildren(...nodes.filter(Boolean));
}

async function refreshQuotaBanner() {
  if (!team) return banner();
  try {
    const { body } = await api("GET", teamPath("/billing"));
    if (body.enabled && body.blocked) {
      banner(notice("bad", h("strong", {}, "Alert quota used up. "),
        `${body.used} of ${body.limit} alerts of the ${body.plan ? body.plan.name : ""} plan this period: new alerts are recorded but not worked on. `,
        h("a", { href: "#/usage" }, "Upgrade the plan")));
    } else if (body.enabled && body.limit && body.used >= 0.8 * body.limit) {
      banner(notice("warn", `${body.used} of ${body.limit} alerts used this period. `, h("a", { href: "#/usage" }, "See the plans")));
    } else {
      banner();
    }
  } catch {
    banner();
  }
}

// ------------------------------------------------------------------------------------------------ sign-in

function signOut(message) {
  sessionStorage.removeItem(SESSION);
  session = null;
  me = null;
  team = null;
  stopPage();
  renderChrome();
  renderSignIn(message);
}

async function afterSignIn() {
  const { body } = await api("GET", "/v1/whoami", { signingIn: true });
  me = body;
  team = me.team || sessionStorage.getItem("dreamops.team");
  if (!team && me.role === "operator") {
    const { body: teams } = await api("GET", "/v1/teams");
    team = teams.teams.length ? teams.teams[0].id : null;
  }
  renderChrome();
  await refreshQuotaBanner();
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", "/#/incidents");
  route();
}

async function exchangeCode(code) {
  // The code leaves the address bar before anything else happens: it is single-use either way.
  history.replaceState(null, "", "/#/incidents");
  try {
    const { body } = await api("POST", "/v1/sessions", { body: { code }, signingIn: true });
    saveSession(body.api_key);
    await afterSignIn();
  } catch (e) {
    renderSignIn(`That sign-in link did not work: ${e.message}. Restart \`dreamops serve --sandbox\` for a new one, or sign in with an API key.`);
  }
}

function b64url(bytes) {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function discovery() {
  const issuer = authConfig.oidc.issuer.replace(/\/+$/, "");
  const resp = await fetch(`${issuer}/.well-known/openid-configuration`, { credentials: "omit", cache: "no-store" });
  if (!resp.ok) throw new Error(`the issuer's discovery document answered ${resp.status}`);
  return resp.json();
}

async function startOidc() {
  const doc = await discovery();
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state }));
  const u = new URL(doc.authorization_endpoint);
  u.searchParams.set("response_type", "code");
  u.searchParams.set("client_id", authConfig.oidc.client_id);
  u.searchParams.set("redirect_uri", `${location.origin}/`);
  u.searchParams.set("scope", authConfig.oidc.scopes);
  u.searchParams.set("state", state);
  u.searchParams.set("code_challenge", challenge);
  u.searchParams.set("code_challenge_method", "S256");
  location.assign(u.href);
}

async function finishOidc(params) {
  history.replaceState(null, "", "/#/incidents");
  const saved = JSON.parse(sessionStorage.getItem(PKCE) || "null");
  sessionStorage.removeItem(PKCE);
  if (params.get("error")) throw new Error(`the issuer refused: ${params.get("error_description") || params.get("error")}`);
  if (!saved || saved.state !== params.get("state")) throw new Error("the answer does not belong to this sign-in (state mismatch)");
  const doc = await discovery();
  const form = new URLSearchParams({
    grant_type: "authorization_code",
    code: params.get("code") || "",
    redirect_uri: `${location.origin}/`,
    client_id: authConfig.oidc.client_id,
    code_verifier: saved.verifier,
  });
  const resp = await fetch(doc.token_endpoint, { method: "POST", body: form, credentials: "omit", cache: "no-store" });
  const tokens = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(`the token endpoint answered ${resp.status}: ${tokens.error_description || tokens.error || ""}`);
  const candidates = [tokens.access_token, tokens.id_token].filter((t) => t && t.split(".").length === 3);
  for (const t of candidates) {
    saveSession(t);
    try {
      await afterSignIn();
      return;
    } catch (e) {
      if (e.status !== 401) throw e;
    }
  }
  sessionStorage.removeItem(SESSION);
  session = null;
  throw new Error("the API accepted none of the issuer's tokens (check the audience and the team claim)");
}

function renderSignIn(message) {
  const keyInput = h("input", { id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const error = h("p", { class: "error", id: "signin-error", role: "alert" }, message || "");
  const form = h("form", {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        error.textContent = "";
        saveSession(keyInput.value.trim());
        keyInput.value = "";
        try {
          await afterSignIn();
        } catch (e) {
          sessionStorage.removeItem(SESSION);
          session = null;
          error.textContent = literal(`Not signed in: ${e.message}`);
        }
      },
    },
  },
  h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), keyInput,
    h("div", { class: "hint" }, "Kept in this tab's session storage only; sent as a bearer header.")),
  h("button", { class: "primary", type: "submit" }, "Sign in"));
  const oidc = authConfig.oidc
    ? h("p", {}, h("button", {
      type: "button", id: "oidc",
      on: { click: () => startOidc().catch((e) => { error.textContent = literal(`Single sign-on failed: ${e.message}`); }) },
    }, `Sign in with ${new URL(authConfig.oidc.issuer).host}`))
    : null;
  show(h("section", { class: "signin card", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to DreamOps"), oidc, form, error,
    authConfig.sign_in_codes ? h("p", { class: "muted" }, "Running locally? `dreamops serve --sandbox` prints a one-click sign-in link.") : null));
}

// ------------------------------------------------------------------------------------------------ chrome and routing

const PAGES = [
  ["incidents", "Incidents", "viewer"],
  ["insight", "Insight", "viewer"],
  ["usage", "Usage & plan", "viewer"],
  ["settings", "Settings", "viewer"],
  ["integrations", "Integrations", "viewer"],
  ["keys", "API keys", "admin"],
  ["runbook", "Runbook", "viewer"],
  ["audit", "Audit log", "admin"],
];

function renderChrome() {
  const current = (location.hash.split("/")[1] || "incidents");
  $("#nav").replaceChildren(...(me ? PAGES.filter(([, , r]) => can(r)).map(([id, label]) =>
    h("a", { href: `#/${id}`, "aria-current": id === current ? "page" : null }, label)) : []));
  $("#who").replaceChildren(...(me ? [
    h("span", { id: "principal" }, `${me.display} · ${me.role}${team ? ` · team ${team}` : ""}`),
    h("button", { type: "button", id: "sign-out", on: { click: () => signOut("Signed out.") } }, "Sign out"),
  ] : []));
}

let stopCurrent = null;
function stopPage() {
  if (stopCurrent) stopCurrent();
  stopCurrent = null;
}

function show(...nodes) {
  // replaceChildren would turn a left-out part (null) into the text "null".
  $("#main").replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

async function route() {
  stopPage();
  renderChrome();
  if (!me) return renderSignIn();
  if (!team) return show(h("h1", {}, "No team"), h("p", {}, "This principal belongs to no team, and no team exists yet."));
  const [, page, id] = location.hash.split("/");
  const pages = {
    incidents: () => (id ? incidentPage(decodeURIComponent(id)) : incidentsPage()),
    insight: insightPage,
    usage: usagePage,
    settings: settingsPage,
    integrations: integrationsPage,
    keys: keysPage,
    runbook: runbookPage,
    audit: auditPage,
  };
  const render = pages[page] || pages.incidents;
  try {
    await render();
  } catch (e) {
    if (e.status !== 401) show(h("h1", {}, "Could not load this page"), notice("bad", e.message));
  }
  $("#main").focus({ preventScroll: true });
}

// ------------------------------------------------------------------------------------------------ incidents

function stateName(st) {
  return typeof st === "string" ? st : st && st.state ? st.state : "unknown";
}

function badge(st) {
  const name = stateName(st);
  const reason = st && st.reason ? ` (${st.reason})` : "";
  return h("span", { class: `badge s-${name}` }, `${name.replace(/_/g, " ")}${reason}`);
}

async function incidentsPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  let filter = params.get("state") || "";
  let items = [];
  let etag = null;
  let stopped = false;
  const ctrl = new AbortController();
  const ticker = setInterval(() => draw(), 30000); // relative ages stay true
  stopCurrent = () => {
    stopped = true;
    ctrl.abort();
    clearInterval(ticker);
  };
  const liveLabel = h("span", { class: "live", id: "live" }, "connecting…");
  const select = h("select", { id: "state-filter" },
    h("option", { value: "" }, "All states"), h("option", { value: "open" }, "Open (being worked on)"),
    ...STATES.filter((x) => !OPEN.includes(x)).concat(["awaiting_approval"]).map((x) => h("option", { value: x }, x.replace(/_/g, " "))));
  select.value = filter;
  const stats = h("div", { class: "stats", id: "counts", "aria-label": "Counts by outcome" });
  const list = h("div", { id: "incident-list" });

  const query = () => {
    const states = filter === "open" ? OPEN.join(",") : filter;
    return teamPath(`/incidents?limit=200${states ? `&state=${states}` : ""}`);
  };
  const visible = (i) => !filter || (filter === "open" ? OPEN.includes(stateName(i.state)) : stateName(i.state) === filter);

  function draw() {
    const counts = {};
    for (const i of items) counts[stateName(i.state)] = (counts[stateName(i.state)] || 0) + 1;
    stats.replaceChildren(...Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, n]) =>
      h("span", { class: "stat", "data-state": k }, h("b", {}, String(n)), k.replace(/_/g, " "))));
    if (!items.length) {
      const hook = `${location.origin}/webhooks/pagerduty/${team}`;
      list.replaceChildren(h("div", { class: "card", id: "empty" },
        h("h2", {}, filter ? "No incidents in this state" : "No incidents yet"),
        h("p", {}, "Send a first alert: add a PagerDuty webhook subscription (incident.triggered, incident.resolved) pointing at"),
        h("pre", {}, hook),
        h("p", {}, "with the team's PagerDuty webhook secret set under Integrations, or an Alertmanager receiver at ",
          h("code", {}, `${location.origin}/webhooks/alertmanager/${team}`), ". New incidents appear here as they arrive.")));
      return;
    }
    const rows = items.map((i) => h("tr", { "data-id": i.id },
      h("td", { "data-label": "Incident" }, h("a", { href: `#/incidents/${encodeURIComponent(i.id)}` }, i.title || i.id)),
      h("td", { "data-label": "Service" }, i.service),
      h("td", { "data-label": "State" }, badge(i.state)),
      h("td", { "data-label": "Action" }, i.action ? actionName(i.action) : "—"),
      h("td", { "data-label": "Opened" }, when(i.created_at))));
    list.replaceChildren(h("div", { class: "scroll" }, h("table", { class: "cards" },
      h("thead", {}, h("tr", {}, ...["Incident", "Service", "State", "Action", "Opened"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...rows))));
  }

  async function load() {
    const r = await api("GET", query(), { ifNoneMatch: etag });
    if (r.status === 304) return;
    etag = r.etag;
    items = r.body.items;
    draw();
  }

  function upsert(summary) {
    const at = items.findIndex((i) => i.id === summary.id);
    if (at >= 0) items.splice(at, 1);
    if (visible(summary)) items.unshift(summary);
    items.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    draw();
  }

  async function poll() {
    liveLabel.className = "live poll";
    liveLabel.textContent = `updating every ${authConfig.poll_secs} s`;
    while (!stopped) {
      await sleep(authConfig.poll_secs * 1000);
      if (stopped) return;
      try {
        await load();
        liveLabel.className = "live poll";
      } catch {
        liveLabel.className = "live down";
      }
    }
  }

  async function stream() {
    while (!stopped) {
      try {
        const resp = await fetch(teamPath("/incidents/stream"), {
          headers: { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" },
          signal: ctrl.signal, cache: "no-store", credentials: "omit",
        });
        if (resp.status === 501) return poll();
        if (resp.status === 401) return signOut("Signed out: the session ended.");
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let name = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (name === "ready") {
              liveLabel.className = "live";
              liveLabel.textContent = "live";
              await load();
            } else if (name === "incident") {
              upsert(JSON.parse(data.join("\n")));
            }
          }
        }
      } catch (e) {
        if (stopped) return;
        liveLabel.className = "live down";
        liveLabel.textContent = "reconnecting…";
      }
      await sleep(2000);
    }
  }

  select.addEventListener("change", () => {
    filter = select.value;
    history.replaceState(null, "", `#/incidents${filter ? `?state=${filter}` : ""}`);
    etag = null;
    load();
  });
  show(h("div", { class: "row" }, h("h1", { class: "grow" }, "Incidents"), liveLabel),
    h("div", { class: "row" }, h("label", { for: "state-filter" }, "State"), select), stats, list);
  await load();
  // Not awaited: the page is shown; the stream (or the polling) runs until the page is left.
  if (authConfig.live === "stream") stream();
  else poll();
}

function diffTable(changes) {
  return h("div", { class: "scroll" }, h("table", { class: "diff", id: "diff" },
    h("thead", {}, h("tr", {}, ...["Object", "Field", "Before", "", "After"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, ...changes.map((c) => h("tr", {},
      h("td", {}, c.object), h("td", { class: "mono" }, c.field),
      h("td", { class: "before" }, c.before ?? "(none)"), h("td", { "aria-hidden": "true" }, "→"),
      h("td", { class: "after" }, c.after ?? "(none)"))))));
}

// An action kind as the API spells it (`RAISE_MEMORY_LIMIT`), for reading: "raise memory limit". An action
// object carries its kind in `action`.
function actionName(a) {
  const kind = typeof a === "string" ? a : a && typeof a === "object" ? a.action : null;
  return String(kind || "action").toLowerCase().replace(/_/g, " ");
}

function actorText(a) {
  if (!a) return "";
  return a.name ? `${a.type}: ${a.name}` : a.type;
}

async function incidentPage(id) {
  let etag = null;
  let stopped = false;
  let message = null; // kept across reloads: the answer to the last approve or reject
  stopCurrent = () => { stopped = true; };

  let shownHash = null; // the diff on screen: what an approval approves
  const changed = h("div", { id: "proposal-changed" });

  async function draw(force = false) {
    const r = await api("GET", teamPath(`/incidents/${encodeURIComponent(id)}`), { ifNoneMatch: force ? null : etag });
    if (r.status === 304) return false;
    etag = r.etag;
    const { incident: inc, timeline, proposal, pagerduty_url: pd } = r.body;
    const hash = proposal && proposal.plan ? proposal.plan.hash : null;
    // A diff is never swapped under the reader's eyes: approving approves what is on screen. A new one is
    // announced, and shown when asked for (or when an approval of the old one is refused).
    if (!force && shownHash && hash && hash !== shownHash && stateName(inc.state) === "awaiting_approval") {
      changed.replaceChildren(notice("warn", h("strong", {}, "The proposed diff changed since it was shown. "),
        "Approving now approves the diff on screen, which the agent would refuse. ",
        h("button", { type: "button", id: "show-new-diff", on: { click: () => { message = null; draw(true); } } }, "Show the new diff")));
      return false;
    }
    changed.replaceChildren();
    shownHash = hash;
    const d = inc.diagnosis;
    const st = stateName(inc.state);
    const created = Date.parse(inc.created_at);
    const parts = [
      h("p", {}, h("a", { href: "#/incidents" }, "← Incidents")),
      h("h1", { id: "incident-title" }, inc.alert.title || inc.id),
      h("div", { class: "row" }, badge(inc.state), h("span", { class: "muted" }, inc.id),
        pd ? h("a", { href: pd, rel: "noreferrer noopener", target: "_blank", id: "pagerduty-link" }, "PagerDuty incident") : null),
      message,
      changed,
      h("div", { class: "card" }, h("div", { class: "grid" },
        h("div", {}, h("div", { class: "muted" }, "Service"), inc.alert.service),
        h("div", {}, h("div", { class: "muted" }, "Workload"), inc.workload ? `${inc.workload.namespace}/${inc.workload.name}` : "—"),
        h("div", {}, h("div", { class: "muted" }, "Opened"), when(inc.created_at)),
        h("div", {}, h("div", { class: "muted" }, "Last change"), when(inc.updated_at))),
      inc.outcome ? h("p", { id: "outcome" }, h("strong", {}, "Outcome: "), inc.outcome) : null),
    ];
    if (d) {
      parts.push(h("h2", {}, "Diagnosis"), h("div", { class: "card", id: "diagnosis" },
        h("p", {}, h("strong", {}, d.category.replace(/_/g, " ")), ` · confidence ${Math.round(d.confidence * 100)}% · risk ${d.risk}`,
          ` · decided by ${d.decided_by === "llm" ? "the model" : "the rules"}${d.rule ? ` (${d.rule})` : ""}`,
          d.change_induced ? " · follows a change" : ""),
        h("p", {}, d.summary),
        d.evidence.length ? h("ul", { class: "evidence" }, ...d.evidence.map((e) => h("li", {}, h("pre", {}, e)))) : null));
    }
    if (inc.decision) {
      parts.push(h("h2", {}, "Decision"), h("div", { class: "card", id: "decision" },
        h("p", {}, h("strong", {}, inc.decision.decision.replace(/_/g, " ")), " — ", inc.decision.reason)));
    }
    if (proposal) {
      const plan = proposal.plan;
      const awaiting = st === "awaiting_approval";
      const result = h("p", { id: "decision-result", role: "status" });
      const card = h("div", { class: "card", id: "proposal" },
        h("p", {}, h("strong", {}, proposal.action)),
        plan ? diffTable(plan.changes) : h("p", { class: "muted" }, "No dry-run diff (nothing in the cluster changes)."),
        plan ? h("p", { class: "muted mono" }, `diff ${plan.hash.slice(0, 16)} · planned ${local(plan.planned_at)}`) : null,
        h("p", {}, `Approvals ${proposal.approvals.length} of ${proposal.approvals_required}`,
          proposal.expires_at ? [" · expires ", when(proposal.expires_at)] : null),
        proposal.approvals.length ? h("ul", {}, ...proposal.approvals.map((a) => h("li", {}, `${a.principal} at ${local(a.at)}`))) : null);
      if (awaiting && can("responder") && plan) {
        const reason = h("input", { id: "reject-reason", type: "text", maxlength: "500", placeholder: "Why not (required to reject)" });
        const approve = h("button", {
          class: "primary", type: "button", id: "approve",
          on: {
            click: async () => {
              approve.disabled = true;
              try {
                const { body } = await api("POST", teamPath(`/incidents/${encodeURIComponent(id)}/approve`), { body: { proposal: plan.hash } });
                message = notice("ok", body.remaining_approvals > 0
                  ? `Approved. ${body.remaining_approvals} more approval(s) from another person needed.`
                  : "Approved: the action is being applied and verified.");
              } catch (e) {
                message = notice("bad", h("strong", {}, e.code === "stale_proposal" ? "Not approved: the diff changed. " : "Not approved. "),
                  e.message, e.code === "stale_proposal" ? " The current diff is shown below; review it before approving again." : "");
              }
              await draw(true);
            },
          },
        }, "Approve this diff");
        const reject = h("button", {
          class: "danger", type: "button", id: "reject",
          on: {
            click: async () => {
              if (!reason.value.trim()) {
                result.textContent = "Say why you reject it (it goes into the incident's timeline).";
                reason.focus();
                return;
              }
              try {
                await api("POST", teamPath(`/incidents/${encodeURIComponent(id)}/reject`), { body: { reason: reason.value.trim() } });
                message = notice("ok", "Rejected: nothing was changed; the incident is escalated.");
              } catch (e) {
                message = notice("bad", `Not rejected: ${e.message}`);
              }
              await draw(true);
            },
          },
        }, "Reject");
        card.append(h("div", { class: "row" }, approve, h("div", { class: "grow" },
          h("label", { for: "reject-reason" }, "Reason to reject"), reason), reject), result);
      } else if (awaiting && !can("responder")) {
        card.append(h("p", { class: "muted", id: "viewer-note" }, "Approving needs the responder role; you are a viewer."));
      }
      parts.push(h("h2", {}, "Proposed action"), card);
    }
    if (inc.actions && inc.actions.length) {
      parts.push(h("h2", {}, "Actions"), h("div", { class: "card", id: "actions" }, ...inc.actions.map((a) => h("div", {},
        h("p", {}, h("strong", {}, actionName(a.action)), ` · ${a.status}`,
          a.applied_at ? ` · applied ${local(a.applied_at)}` : "", a.error ? h("span", { class: "error" }, ` · ${a.error}`) : null),
        a.after ? h("p", { class: "muted" }, a.after) : null,
        a.before ? h("p", {}, h("strong", {}, a.status === "undone" ? "Undone, restored: " : "Undo restores: "),
          h("code", {}, JSON.stringify(a.before))) : null))));
    }
    if (inc.verification) {
      const v = inc.verification;
      parts.push(h("h2", {}, "Verification"), h("div", { class: "card", id: "verification" },
        h("p", {}, `${v.checks} check(s) since ${local(v.started_at)}, deadline ${local(v.deadline)}`,
          v.healthy === true ? " · healthy" : v.healthy === false ? " · not healthy" : " · in progress"),
        v.last_verdict ? h("pre", {}, v.last_verdict) : null));
    }
    parts.push(h("h2", {}, "Timeline"), h("div", { class: "scroll" }, h("table", { class: "cards", id: "timeline" },
      h("thead", {}, h("tr", {}, ...["When", "+", "Stage", "Actor", "What", "Why"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...timeline.map((e) => h("tr", {},
        h("td", { "data-label": "When" }, local(e.at)),
        h("td", { "data-label": "Elapsed", class: "nowrap" }, duration((Date.parse(e.at) - created) / 1000)),
        h("td", { "data-label": "Stage" }, e.stage, e.to ? [" → ", stateName(e.to)] : ""),
        h("td", { "data-label": "Actor" }, actorText(e.actor)),
        h("td", { "data-label": "What" }, e.what),
        h("td", { "data-label": "Why" }, e.why)))))));
    // A redraw keeps what the reader was typing (the reason to reject) and where.
    const typed = document.querySelector("#reject-reason");
    const keep = typed ? { value: typed.value, focused: document.activeElement === typed } : null;
    show(...parts);
    const again = document.querySelector("#reject-reason");
    if (keep && again) {
      again.value = keep.value;
      if (keep.focused) again.focus();
    }
    return true;
  }

  await draw();
  // Locally a look is cheap; behind API Gateway each is a function invocation, so it follows the poll interval.
  const every = authConfig.live === "stream" ? 1500 : authConfig.poll_secs * 1000;
  (async () => {
    while (!stopped) {
      await sleep(every);
      if (stopped) return;
      try {
        await draw();
      } catch {
        // kept: the next look tries again
      }
    }
  })();
}

// ------------------------------------------------------------------------------------------------ insight

function barChart(id, label, weeks, series, yFmt, integer = false) {
  const W = 720, H = 240, L = 48, B = 28, T = 12;
  const totals = weeks.map((w) => series.reduce((n, sr) => n + (sr.value(w) || 0), 0));
  const max = Math.max(1, ...totals);
  const bw = (W - L - 8) / weeks.length;
  const y = (v) => H - B - ((H - B - T) * v) / max;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label, id });
  // Counts get whole-number ticks only (a "0.5 incidents" line helps nobody).
  for (const f of [0, 0.5, 1].filter((f) => !integer || Number.isInteger(max * f))) {
    svg.append(s("line", { x1: L, x2: W - 4, y1: y(max * f), y2: y(max * f), stroke: "#d9dde3" }),
      s("text", { x: L - 6, y: y(max * f) + 4, "text-anchor": "end" }, yFmt(max * f)));
  }
  weeks.forEach((w, i) => {
    let base = 0;
    for (const sr of series) {
      const v = sr.value(w) || 0;
      if (v > 0) {
        svg.append(s("rect", { x: L + i * bw + 3, width: Math.max(1, bw - 6), y: y(base + v), height: y(base) - y(base + v), fill: sr.color },
          s("title", {}, `${w.start}: ${sr.name} ${yFmt(v)}`)));
      }
      base += v;
    }
    if (weeks.length <= 16 || i % 2 === 0) {
      svg.append(s("text", { x: L + i * bw + bw / 2, y: H - 8, "text-anchor": "middle" }, w.start.slice(5)));
    }
  });
  return svg;
}

async function insightPage() {
  const { body } = await api("GET", teamPath("/insight?weeks=12"));
  const weeks = body.weeks;
  const minutes = (v) => (v >= 90 ? `${Math.round(v / 60)}m` : `${Math.round(v)}s`);
  const outcome = [
    { name: "resolved by the agent", color: "#2fa36b", value: (w) => w.resolved },
    { name: "escalated", color: "#d9534f", value: (w) => w.escalated },
    { name: "rolled back", color: "#e0a526", value: (w) => w.rolled_back },
    { name: "failed or open", color: "#9aa3ae", value: (w) => w.failed + w.open },
  ];
  const totals = Object.entries(body.totals);
  show(h("h1", {}, "Insight"),
    h("p", { class: "muted" }, `The last ${weeks.length} weeks (weeks start on Monday, UTC). Times in ${ZONE}.`),
    body.truncated ? notice("warn", "More incidents than one answer examines: the oldest weeks are partial.") : null,
    h("div", { class: "stats" }, ...totals.map(([k, n]) => h("span", { class: "stat" }, h("b", {}, String(n)), k.replace(/_/g, " ")))),
    h("h2", {}, "Time to resolve (median per week)"),
    barChart("mttr-chart", "Median time from alert to verified fix, per week", weeks,
      [{ name: "median", color: "#1f5fbf", value: (w) => w.mttr_median_secs || 0 }], minutes),
    h("h2", {}, "Outcomes per week"),
    h("div", { class: "legend" }, h("span", { class: "k-resolved" }, "resolved by the agent"), h("span", { class: "k-escalated" }, "escalated"),
      h("span", { class: "k-rolled_back" }, "rolled back"), h("span", { class: "k-other" }, "failed or still open")),
    barChart("outcome-chart", "Incidents per week by outcome", weeks, outcome, (v) => String(Math.round(v)), true),
    h("details", {}, h("summary", {}, "The numbers"), h("div", { class: "scroll" }, h("table", { id: "insight-table" },
      h("thead", {}, h("tr", {}, ...["Week", "Opened", "Resolved", "Escalated", "Rolled back", "Failed", "Ignored", "Median", "Mean"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...weeks.map((w) => h("tr", {}, h("td", {}, w.start), h("td", {}, String(w.opened)), h("td", {}, String(w.resolved)),
        h("td", {}, String(w.escalated)), h("td", {}, String(w.rolled_back)), h("td", {}, String(w.failed)), h("td", {}, String(w.ignored)),
        h("td", {}, duration(w.mttr_median_secs)), h("td", {}, duration(w.mttr_mean_secs)))))))));
}

// ------------------------------------------------------------------------------------------------ usage and plan

async function usagePage() {
  const [{ body: b }, { body: plans }] = await Promise.all([api("GET", teamPath("/billing")), api("GET", "/v1/plans")]);
  await refreshQuotaBanner();
  if (!b.enabled) {
    return show(h("h1", {}, "Usage & plan"), h("div", { class: "card", id: "billing-off" },
      h("p", {}, "Alerts are not metered on this deployment (billing is off): every alert is worked on.")));
  }
  const pct = b.limit ? Math.min(100, Math.round((100 * b.used) / b.limit)) : 0;
  const meter = h("div", { class: `meter${b.blocked ? " full" : ""}`, role: "meter", "aria-valuemin": "0",
    "aria-valuemax": String(b.limit || 0), "aria-valuenow": String(b.used), "aria-label": "Alerts used this period" });
  meter.append(h("div", {}));
  const out = h("div", { id: "checkout-result" });
  const checkout = async (plan, btn) => {
    btn.disabled = true;
    out.replaceChildren();
    try {
      const { body: c } = await api("POST", teamPath("/billing/checkout"), { body: { plan } });
      out.replaceChildren(h("div", { class: "card" }, h("p", {}, c.note),
        h("a", { class: "button primary", id: "pay", href: c.redirect_url }, `Pay ${c.amount}`),
        h("p", { class: "muted" }, `Order ${c.order_id}; the page is valid until ${local(c.expires_at)}.`)));
      $("#pay").focus();
    } catch (e) {
      out.replaceChildren(notice("bad", `Checkout failed: ${e.message}`));
    } finally {
      btn.disabled = false;
    }
  };
  const planRows = plans.plans.map((p) => {
    const current = b.plan && b.plan.id === p.id;
    const btn = h("button", { type: "button", class: "primary", "data-plan": p.id }, current ? "Renew" : "Upgrade");
    btn.addEventListener("click", () => checkout(p.id, btn));
    return h("tr", {}, h("td", { "data-label": "Plan" }, p.name, current ? h("span", { class: "badge" }, " current") : ""),
      h("td", { "data-label": "Price" }, p.price_paise ? `${p.price} / ${p.period}` : "free"),
      h("td", { "data-label": "Alerts" }, p.alerts === null ? "unlimited" : `${p.alerts} per ${p.period}`),
      h("td", {}, p.price_paise && can("admin") ? btn : ""));
  });
  show(h("h1", {}, "Usage & plan"),
    h("div", { class: "card", id: "usage" },
      h("p", {}, h("strong", {}, b.plan ? b.plan.name : "Free"), " plan · ",
        b.limit === null ? `${b.used} alerts this period (unlimited)` : `${b.used} of ${b.limit} alerts used this period`,
        b.period ? ` (${local(b.period.start)} – ${local(b.period.end)})` : ""),
      b.limit !== null ? meter : null,
      b.blocked ? h("p", { class: "error", id: "blocked" }, "The limit is reached: new alerts are recorded as ignored (quota exceeded) until the period ends or the plan is upgraded.") : null,
      b.next ? h("p", {}, `Next: ${b.next.plan} from ${local(b.next.start)}.`) : null),
    h("h2", {}, "Plans"),
    h("div", { class: "scroll" }, h("table", { class: "cards", id: "plans" },
      h("thead", {}, h("tr", {}, ...["Plan", "Price", "Alerts", ""].map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, ...planRows))),
    can("admin") ? null : h("p", { class: "muted" }, "Changing the plan needs the admin role."),
    out,
    h("h2", {}, "Orders"),
    b.orders.length ? h("div", { class: "scroll" }, h("table", { class: "cards", id: "orders" },
      h("thead", {}, h("tr", {}, ...["Order", "Plan", "Amount", "State", "Created", "By"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...b.orders.map((o) => h("tr", {}, h("td", { "data-label": "Order", class: "mono" }, o.id), h("td", { "data-label": "Plan" }, o.plan),
        h("td", { "data-label": "Amount" }, `₹${(o.amount_paise / 100).toLocaleString("en-IN")}`), h("td", { "data-label": "State" }, badge(o.state)),
        h("td", { "data-label": "Created" }, when(o.created_at)), h("td", { "data-label": "By" }, o.created_by))))))
      : h("p", { class: "muted" }, "No orders yet."));
  meter.firstChild.style.width = `${pct}%`;
}

// ------------------------------------------------------------------------------------------------ settings

function flatten(obj, prefix = "") {
  const out = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (k === "per_action" && !prefix) out.push([path, v]);
    else if (v && typeof v === "object" && !Array.isArray(v)) out.push(...flatten(v, path));
    else out.push([path, v]);
  }
  return out;
}

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] = o[k] || {};
  o[keys[keys.length - 1]] = value;
}

async function settingsPage() {
  const { body: settings, etag } = await api("GET", teamPath("/settings"));
  let tag = etag;
  const admin = can("admin");
  const fields = new Map(); // path → {read(), box, error}
  const form = h("form", { id: "settings-form", novalidate: true });
  for (const [path, value] of flatten(settings)) {
    const id = `f-${path.replace(/\./g, "-")}`;
    const error = h("div", { class: "error", id: `${id}-error` });
    const box = h("div", { class: "field", "data-field": path });
    if (path === "per_action") {
      const group = h("fieldset", { class: "field", "data-field": path }, h("legend", {}, "Autonomy per action (overrides the team's)"));
      const selects = {};
      for (const a of ACTIONS) {
        const sid = `${id}-${a}`;
        const sel = h("select", { id: sid, disabled: !admin }, h("option", { value: "" }, "team default"), ...ENUMS.autonomy.map((x) => h("option", { value: x }, x)));
        sel.value = value[a] || "";
        selects[a] = sel;
        group.append(h("div", { class: "field" }, h("label", { for: sid }, a.toLowerCase().replace(/_/g, " ")), sel));
      }
      group.append(error);
      fields.set(path, { box: group, error, read: () => Object.fromEntries(ACTIONS.filter((a) => selects[a].value).map((a) => [a, selects[a].value])) });
      form.append(group);
      continue;
    }
    const name = path.split(".").pop();
    let input;
    let read;
    if (ENUMS[name]) {
      input = h("select", { id, disabled: !admin }, ...ENUMS[name].map((x) => h("option", { value: x }, x)));
      input.value = value;
      read = () => input.value;
    } else if (Array.isArray(value)) {
      input = h("input", { id, type: "text", value: value.join(", "), disabled: !admin, "aria-describedby": `${id}-hint ${id}-error` });
      read = () => input.value.split(",").map((x) => x.trim()).filter(Boolean);
      box.append(h("div", { class: "hint", id: `${id}-hint` }, "comma-separated; empty: any"));
    } else if (typeof value === "boolean") {
      input = h("input", { id, type: "checkbox", checked: value, disabled: !admin });
      read = () => input.checked;
    } else if (typeof value === "number") {
      input = h("input", { id, type: "number", step: "any", value: String(value), disabled: !admin, "aria-describedby": `${id}-error` });
      read = () => (input.value.trim() === "" ? null : Number(input.value));
    } else {
      input = h("input", { id, type: "text", value: value ?? "", disabled: !admin });
      read = () => input.value;
    }
    box.prepend(h("label", { for: id }, path.replace(/_/g, " ")), input);
    box.append(error);
    fields.set(path, { box, error, read });
    form.append(box);
  }
  const status = h("div", { id: "settings-status", role: "status" });
  const save = h("button", { class: "primary", type: "submit", id: "save-settings", disabled: !admin }, "Save settings");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const f of fields.values()) {
      f.error.textContent = "";
      f.box.classList.remove("invalid");
    }
    status.replaceChildren();
    const next = {};
    for (const [path, f] of fields) setPath(next, path, f.read());
    save.disabled = true;
    try {
      const r = await api("PUT", teamPath("/settings"), { body: next, ifMatch: tag });
      tag = r.etag;
      status.replaceChildren(notice("ok", "Saved. The next incident is decided with these settings."));
    } catch (e) {
      if (e.code === "invalid_settings" && Array.isArray(e.details)) {
        for (const d of e.details) {
          const base = d.field.replace(/\[\d+\]$/, "");
          const f = fields.get(base);
          if (f) {
            f.error.textContent = literal(`${f.error.textContent ? `${f.error.textContent}; ` : ""}${d.message}`);
            f.box.classList.add("invalid");
          }
        }
        status.replaceChildren(notice("bad", `Not saved: ${e.message}. Each problem is shown beside its field.`));
        const first = form.querySelector(".invalid input, .invalid select");
        if (first) first.focus();
      } else if (e.code === "precondition_failed") {
        status.replaceChildren(notice("warn", h("strong", {}, "Not saved: someone else changed these settings after you opened them. "),
          "Your edits are still in the form. Load the current settings to see theirs, then make your change again. ",
          h("button", { type: "button", id: "reload-settings", on: { click: () => route() } }, "Load the current settings")));
      } else {
        status.replaceChildren(notice("bad", `Not saved: ${e.message}`));
      }
    } finally {
      save.disabled = !admin;
    }
  });
  form.append(h("div", { class: "row" }, save), status);
  show(h("h1", {}, "Settings"),
    admin ? h("p", { class: "muted" }, "What the agent may do on its own. Saving replaces every setting; a concurrent change is detected, not overwritten.")
      : h("p", { class: "muted", id: "read-only" }, "Read only: changing settings needs the admin role."),
    h("div", { class: "card" }, form));
}

// ------------------------------------------------------------------------------------------------ integrations

async function integrationsPage() {
  const { body } = await api("GET", teamPath("/integrations"));
  const admin = can("admin");
  const cards = body.integrations.map((i) => {
    const result = h("div", { id: `test-${i.name}` });
    const inputs = {};
    const rows = i.fields.map((f) => {
      const id = `i-${i.name}-${f.name}`;
      const placeholder = f.source === "deployment" ? "the deployment's (set one to override)"
        : f.configured ? `set (…${f.last4.join(", …")})` : "not set";
      const input = h("input", { id, type: "password", autocomplete: "off", disabled: !admin, placeholder });
      inputs[f.name] = input;
      const remove = f.source === "team" && admin
        ? h("button", { type: "button", on: { click: async () => {
          try {
            await api("PUT", teamPath(`/integrations/${i.name}`), { body: { [f.name]: null } });
            route();
          } catch (e) {
            result.replaceChildren(notice("bad", e.message));
          }
        } } }, "Remove") : null;
      return h("div", { class: "field" }, h("label", { for: id }, f.name.replace(/_/g, " ")),
        h("div", { class: "row" }, h("div", { class: "grow" }, input), remove),
        h("div", { class: "hint" }, f.source === "team" ? `set for this team${f.changed_at ? ` ${ago(f.changed_at)}` : ""}`
          : f.source === "deployment" ? "using the deployment's default" : "not set"));
    });
    // Options are not secret: shown as they are and changed in place (an emptied one is removed).
    const optionInputs = {};
    const optionRows = (i.option_names || []).map((o) => {
      const id = `i-${i.name}-${o}`;
      const input = h("input", { id, type: "text", autocomplete: "off", disabled: !admin, value: i.options[o] || "",
        placeholder: o === "channel" ? "C0123ABCD (the channel's id)" : o === "repository" ? "owner/name" : "" });
      optionInputs[o] = input;
      return h("div", { class: "field" }, h("label", { for: id }, o.replace(/_/g, " ")), input);
    });
    rows.push(...optionRows);
    const save = h("button", { type: "submit", class: "primary", disabled: !admin }, "Save");
    const test = h("button", { type: "button", disabled: !admin || !i.configured, id: `test-button-${i.name}` }, "Test");
    test.addEventListener("click", async () => {
      test.disabled = true;
      result.replaceChildren(h("p", { class: "muted" }, "Checking…"));
      try {
        const { body: t } = await api("POST", teamPath(`/integrations/${i.name}/test`));
        result.replaceChildren(notice(t.ok ? "ok" : "bad", t.ok ? "Working. " : "Not working. ",
          ...t.checks.map((c) => h("div", {}, `${c.field}: ${c.ok ? "ok" : "failed"} — ${c.detail}`))));
      } catch (e) {
        result.replaceChildren(notice("bad", e.message));
      } finally {
        test.disabled = false;
      }
    });
    const form = h("form", { on: { submit: async (ev) => {
      ev.preventDefault();
      const body = Object.fromEntries(Object.entries(inputs).filter(([, el]) => el.value.trim()).map(([k, el]) => [k, el.value.trim()]));
      for (const [k, el] of Object.entries(optionInputs)) {
        const v = el.value.trim();
        if (v !== (i.options[k] || "")) body[k] = v || null;
      }
      if (!Object.keys(body).length) return result.replaceChildren(notice("warn", "Type a new value in a field to set it."));
      try {
        await api("PUT", teamPath(`/integrations/${i.name}`), { body });
        route();
      } catch (e) {
        result.replaceChildren(notice("bad", `Not saved: ${e.message}`, ...problems(e)));
      }
    } } }, ...rows, h("div", { class: "row" }, save, test));
    return h("section", { class: "card", id: `integration-${i.name}`, "aria-labelledby": `h-${i.name}` },
      h("h2", { id: `h-${i.name}` }, i.name, " ", h("span", { class: `badge ${i.configured ? "s-resolved" : ""}` }, i.configured ? "configured" : "not configured")),
      i.changed_by ? h("p", { class: "muted" }, `changed by ${i.changed_by} ${ago(i.changed_at)}`) : null,
      form, result);
  });
  show(h("h1", {}, "Integrations"),
    h("p", { class: "muted" }, "Credentials are write-only: once set, only their last characters are shown."),
    admin ? null : h("p", { class: "muted" }, "Changing credentials needs the admin role."), ...cards);
}

// ------------------------------------------------------------------------------------------------ keys

async function keysPage() {
  const { body } = await api("GET", teamPath("/api-keys"));
  const created = h("div", { id: "created-key" });
  const name = h("input", { id: "key-name", type: "text", maxlength: "100", required: true });
  const roleSel = h("select", { id: "key-role" }, ...["viewer", "responder", "admin"].map((r) => h("option", { value: r }, r)));
  const expires = h("input", { id: "key-expires", type: "datetime-local" });
  const error = h("div", { class: "error", role: "alert" });
  const form = h("form", { id: "key-form", on: { submit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const req = { name: name.value, role: roleSel.value };
    if (expires.value) req.expires_at = new Date(expires.value).toISOString();
    try {
      const { body: k } = await api("POST", teamPath("/api-keys"), { body: req });
      const secret = h("code", { id: "new-key" }, k.api_key);
      await keysPage();
      $("#created-key").replaceChildren(h("div", { class: "secret", role: "status" },
        h("p", {}, h("strong", {}, "Copy the key now: it is shown this once. "), `${k.key.name} (${k.key.role})`),
        h("p", {}, secret), h("button", { type: "button", on: { click: () => navigator.clipboard.writeText(k.api_key) } }, "Copy")));
    } catch (e) {
      error.textContent = literal(`Not created: ${e.message}`);
    }
  } } },
  h("div", { class: "grid" }, h("div", { class: "field" }, h("label", { for: "key-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "key-role" }, "Role"), roleSel),
    h("div", { class: "field" }, h("label", { for: "key-expires" }, `Expires (optional, ${ZONE})`), expires)),
  h("button", { type: "submit", class: "primary", id: "create-key" }, "Create key"), error);
  const rows = body.keys.map((k) => h("tr", { "data-key": k.id },
    h("td", { "data-label": "Name" }, k.name), h("td", { "data-label": "Role" }, k.role), h("td", { "data-label": "Prefix", class: "mono" }, k.prefix),
    h("td", { "data-label": "Created" }, when(k.created_at), h("div", { class: "muted" }, k.created_by)),
    h("td", { "data-label": "Last used" }, when(k.last_used_at)),
    h("td", { "data-label": "Status" }, k.revoked_at ? `revoked ${ago(k.revoked_at)}` : k.expires_at ? `expires ${ago(k.expires_at)}` : "active"),
    h("td", {}, k.revoked_at ? "" : h("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name}`, on: { click: async (ev) => {
      const btn = ev.currentTarget;
      if (btn.dataset.confirm !== "1") {
        btn.dataset.confirm = "1";
        btn.textContent = "Click again to revoke";
        return;
      }
      try {
        await api("DELETE", teamPath(`/api-keys/${encodeURIComponent(k.id)}`));
        await keysPage();
      } catch (e) {
        error.textContent = literal(`Not revoked: ${e.message}`);
      }
    } } }, "Revoke"))));
  show(h("h1", {}, "API keys"), created, h("div", { class: "card" }, h("h2", {}, "New key"), form),
    h("div", { class: "scroll" }, h("table", { class: "cards", id: "keys" },
      h("thead", {}, h("tr", {}, ...["Name", "Role", "Prefix", "Created", "Last used", "Status", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...rows))));
}

// ------------------------------------------------------------------------------------------------ runbook and audit

async function runbookPage() {
  const { body } = await api("GET", teamPath("/runbook"));
  show(h("h1", {}, "Runbook"),
    body.entries.length ? null : h("p", { class: "muted", id: "runbook-empty" }, "No entries yet: one is learned each time a fix verifies or fails to hold."),
    ...body.entries.map((e) => h("div", { class: `card runbook-entry ${e.result === "did_not_hold" ? "did-not-hold" : "held"}` },
      h("p", {}, h("strong", {}, `${e.category.replace(/_/g, " ")} on ${e.workload}`), ` → ${e.action}`,
        h("span", { class: "badge" }, e.result === "did_not_hold" ? " did not hold: not proposed again" : " held"),
        h("span", { class: "muted" }, ` · ${e.outcome} · ${e.result === "did_not_hold" ? "escalated after" : "resolved in"} ${duration(e.mttr_secs)} · learned ${ago(e.learned_at)}`)),
      h("p", {}, e.symptom),
      e.evidence.length ? h("ul", { class: "evidence" }, ...e.evidence.map((x) => h("li", {}, x))) : null,
      h("p", {}, h("a", { href: `#/incidents/${encodeURIComponent(e.incident_id)}` }, "The incident it was learned from")))));
}

async function auditPage(cursor) {
  const { body } = await api("GET", teamPath(`/audit?limit=50${typeof cursor === "string" ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
  show(h("h1", {}, "Audit log"),
    h("div", { class: "scroll" }, h("table", { class: "cards", id: "audit" },
      h("thead", {}, h("tr", {}, ...["When", "Who", "What", "Target", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...body.items.map((e) => h("tr", {}, h("td", { "data-label": "When" }, when(e.at)), h("td", { "data-label": "Who" }, e.principal),
        h("td", { "data-label": "What" }, e.action), h("td", { "data-label": "Target" }, e.target),
        h("td", { "data-label": "Detail" }, h("pre", {}, JSON.stringify(e.detail)))))))),
    body.next ? h("button", { type: "button", on: { click: () => auditPage(body.next) } }, "Older") : null,
    body.items.length ? null : h("p", { class: "muted" }, "Nothing recorded yet."));
}

// ------------------------------------------------------------------------------------------------ start

window.addEventListener("error", (e) => banner(notice("bad", `Something went wrong in the page: ${e.message}`)));
window.addEventListener("unhandledrejection", (e) => {
  if (!(e.reason instanceof ApiError && e.reason.status === 401)) banner(notice("bad", `Something went wrong: ${e.reason && e.reason.message}`));
});
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#sign-in=")) return exchangeCode(location.hash.slice("#sign-in=".length));
  route();
});

async function start() {
  try {
    authConfig = (await api("GET", "/v1/auth/config")).body;
  } catch {
    // The defaults: API keys, polling.
  }
  const q = new URLSearchParams(location.search);
  if (q.get("code") || q.get("error")) {
    try {
      await finishOidc(q);
    } catch (e) {
      renderSignIn(`Single sign-on failed: ${e.message}`);
    }
    return;
  }
  if (location.hash.startsWith("#sign-in=")) return exchangeCode(location.hash.slice("#sign-in=".length));
  loadSession();
  if (!session) return renderSignIn();
  try {
    await afterSignIn();
  } catch (e) {
    if (e.status !== 401) renderSignIn(`Could not sign in: ${e.message}`);
  }
}

start();
