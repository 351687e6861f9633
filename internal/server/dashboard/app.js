// kycd's dashboard: a page over the read API. The API token stays in this
// tab's sessionStorage and goes out as a Bearer header, never as a cookie,
// so no other site can make the browser act with it. Every value from the
// API is written with textContent, never as HTML.
//
// Every view has a URL (#/sessions/{id}, #/subjects/{id}, #/events/{id},
// #/deliveries/{id}, #/quarantine/{id}, #/search?q=, #/audit, and the
// lists with their filters), so a view survives a reload and a link can be
// shared. A page offers only what the signed-in role may do (the API still
// decides); what a role may not read is said, not tried.
// Times show in the browser's zone, UTC on hover. An error shows next to
// what caused it: the section that failed to load, or the button clicked.
"use strict";

const tokenKey = "kycd-token";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const palette = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"];
const otherColor = "#b8bec8";
const statuses = ["REJECTED", "REVIEW", "VERIFIED", "EXPIRED", "NOT_STARTED", "STARTED"];

class Unauthorized extends Error {}

async function api(method, path, payload) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(tokenKey) };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
  if (resp.status === 401) throw new Unauthorized();
  const body = resp.headers.get("Content-Type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const fields = (body?.errors || []).map((e) => `${e.field || "body"} ${e.detail}`).join("; ");
    const err = new Error(`${body?.detail || resp.statusText}${fields ? ": " + fields : ""}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

const enc = encodeURIComponent;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function link(text, href, attrs = {}) { return el("a", text, { href, ...attrs }); }

function row(tbody, cells) {
  const tr = document.createElement("tr");
  const heads = tbody.closest("table")?.tHead?.rows[0]?.cells;
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    if (c instanceof Node) td.append(c); else td.textContent = c ?? "";
    // On a narrow screen each row stacks, every cell named by its column.
    const label = heads?.[i]?.textContent;
    if (label && cells.length > 1) td.dataset.label = label;
    tr.append(td);
  });
  tbody.append(tr);
  return tr;
}

// empty fills a table body with one row saying there is nothing.
function empty(tbody, text) {
  const tr = row(tbody, [text]);
  tr.firstChild.colSpan = tbody.closest("table").tHead.rows[0].cells.length;
  tr.classList.add("none");
}

// span groups nodes and text in one cell.
function span(...parts) {
  const s = el("span");
  s.append(...parts.filter((p) => p !== undefined && p !== null && p !== ""));
  return s;
}

function badge(text, attrs = {}) { return el("em", text, { class: "badge", ...attrs }); }

// --- Ids: cut in the middle, whole on hover and when copied ---

// idText shows id as its beginning, an ellipsis and its last characters
// (a UUIDv7 delivery id begins with its time, so rows made together
// differ in their tail): the whole id stays in the text, only clipped by
// the style, so selecting and copying it copies it whole, and it is in
// the title.
function idText(id, attrs = {}) {
  const s = el("span", null, { class: "id mid", title: id, ...attrs });
  const tail = id.length > 16 ? 8 : 0;
  s.append(el("span", id.slice(0, id.length - tail), { class: "head" }), el("span", id.slice(id.length - tail), { class: "tail" }));
  return s;
}

function idLink(id, href, attrs = {}) {
  const a = el("a", null, { href, ...attrs });
  a.append(idText(id));
  return a;
}

// --- The signed-in role ---

const me = { name: "", role: "" };
const ranks = { viewer: 1, operator: 2, admin: 3 };

// may says whether the signed-in token's role is role or above.
function may(role) { return (ranks[me.role] || 0) >= ranks[role]; }

// --- Times: the browser's zone, UTC on hover ---

const pad = (n, w = 2) => String(n).padStart(w, "0");

function zoneOf(d) {
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(d).find((p) => p.type === "timeZoneName");
  return part ? part.value : "";
}

function localTime(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneOf(d)}`;
}

function utcTime(d) {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)} UTC`;
}

// when is a time element: local time shown, UTC in its title.
function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return el("time", localTime(d), { datetime: iso, title: utcTime(d) });
}

// duration spells a span of milliseconds in its two largest units.
function duration(ms) {
  const m = Math.max(0, Math.floor(ms / 60000)), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60);
  if (d) return `${d}d ${h}h`;
  return h ? `${h}h ${m % 60}m` : `${m}m`;
}

function ago(iso) { return iso ? `${duration(Date.now() - Date.parse(iso))} ago` : ""; }

// localDay is the YYYY-MM-DD of a date input as the start of that day in
// the browser's zone, in RFC 3339; next moves to the following day.
function localDay(day, next) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + (next ? 1 : 0)).toISOString();
}

// --- Errors, next to what caused them ---

// report shows err in box; a refused token ends the session instead.
function report(box, err) {
  if (err instanceof Unauthorized) { logout("The token was refused."); return; }
  if (box) box.textContent = err.message;
  else $("#error").textContent = err.message;
}

// guard runs a loader and shows its error in box.
async function guard(box, fn) {
  box.textContent = "";
  try { await fn(); } catch (err) { report(box, err); }
}

// --- Router ---

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const i = h.indexOf("?");
  const path = i < 0 ? h : h.slice(0, i);
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(i < 0 ? "" : h.slice(i + 1)) };
}

function go(path, params) {
  const q = params && params.toString();
  location.hash = "#/" + path + (q ? "?" + q : "");
}

// setView shows the sections of a list view, and hides the detail
// sections: each shows itself once its data is there.
function setView(view) {
  for (const s of $$("[data-views]")) {
    const list = s.dataset.views.split(" ");
    s.hidden = !list.includes(view) || (s.tagName === "SECTION" && ["session", "subject", "event", "delivery", "quarantined", "search"].includes(view));
  }
  for (const a of $$("#nav [data-nav]")) {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  $("#error").textContent = "";
  // A search's answer belongs to the search: gone on the next page.
  if (view !== "search") $("#search-error").textContent = "";
  $("#object-audit").hidden = true;
}

let routing = 0;

async function route() {
  if (!sessionStorage.getItem(tokenKey)) { logout(); return; }
  const turn = ++routing;
  const { parts, params } = parseHash();
  const [kind, id] = parts;
  const show = (view, load) => { setView(view); return load(); };
  switch (kind || "") {
    case "":
    case "sessions":
      if (id) return show("session", () => showSession(id, params, turn));
      return show("overview", () => loadOverview(params));
    case "subjects":
      if (id) return show("subject", () => showSubject(id, params, turn));
      break;
    case "events":
      if (id) return show("event", () => showEvent(id, turn));
      break;
    case "deliveries":
      if (id) return show("delivery", () => showDelivery(id, turn));
      return show("deliveries", () => loadDeliveries(parseHash().params));
    case "quarantine":
      if (id) return show("quarantined", () => showQuarantined(id, turn));
      return show("quarantine", () => loadQuarantine(params));
    case "search":
      return show("search", () => showSearch(params.get("q") || "", turn));
    case "audit":
      return show("audit", () => guard($("#audit-error"), async () => {
        if (!may("admin")) throw new Error("The audit trail is read with an admin token.");
        await loadAudit(false);
      }));
  }
  setView("overview");
  $("#error").textContent = `There is no page ${location.hash}.`;
  return loadOverview(new URLSearchParams());
}

// current says whether a detail view's answer still belongs on screen:
// the user may have moved on while it loaded.
const current = (turn) => turn === routing;

// --- Overview ---

function overviewParams() { return parseHash().params; }

// statsDefaultWindow is the API's default window of the stats, as its
// answer names it: the dashboard never defines its own.
let statsDefaultWindow = "";

function showWindow(w) {
  if ([...$("#window").options].some((o) => o.value === w)) $("#window").value = w;
}

async function loadOverview(params) {
  if (params.get("window")) showWindow(params.get("window"));
  const form = $("#filters");
  for (const name of ["status", "code", "since", "until", "subject"]) form.elements[name].value = params.get(name) || "";
  await Promise.all([
    guard($("#chart-error"), () => loadStats(params)),
    guard($("#stalled-error"), () => loadStalled(false)),
    guard($("#sessions-error"), () => loadSessions(params, false)),
    loadDeliveries(),
    guard($("#quarantine-error"), () => loadQuarantineList(false)),
  ]);
}

async function loadStats(params) {
  $("#statuses-error").textContent = "";
  let st;
  try {
    const w = params.get("window");
    st = await api("GET", "/api/v1/stats" + (w ? "?window=" + enc(w) : ""));
    if (!w) statsDefaultWindow = st.window;
    showWindow(st.window);
  } catch (err) {
    report($("#statuses-error"), err);
    throw err;
  }
  const status = params.get("status") || "";
  const tiles = $("#statuses");
  tiles.replaceChildren();
  const all = el("button", null, { class: "tile", "aria-pressed": String(status === ""), "data-status": "" });
  all.append(el("span", Object.values(st.sessionsByStatus).reduce((a, b) => a + b, 0), { class: "n" }), "all");
  tiles.append(all);
  for (const s of statuses) {
    if (!(s in st.sessionsByStatus)) continue;
    const b = el("button", null, { class: "tile status-" + s, "aria-pressed": String(status === s), "data-status": s });
    b.append(el("span", st.sessionsByStatus[s], { class: "n" }), s);
    tiles.append(b);
  }
  const codes = $("#codes");
  codes.replaceChildren(...st.topFailureCodes.map((c) => el("option", null, { value: c.code })));
  drawRanking(st);
  drawChart(st);
}

// drawRanking lists the top rejection reasons of the window as bars, each
// a link to the sessions rejected for it: readable for any window, as it
// never depends on how many days there are.
function drawRanking(st) {
  const box = $("#reasons");
  box.replaceChildren();
  if (!st.topFailureCodes.length) return;
  const top = st.topFailureCodes.slice(0, palette.length);
  const total = st.topFailureCodes.reduce((a, c) => a + c.count, 0);
  const rest = total - top.reduce((a, c) => a + c.count, 0);
  const max = Math.max(...top.map((c) => c.count), rest);
  const since = st.since.slice(0, 10);
  const line = (label, count, color, href) => {
    const r = el("div", null, { class: "rank" });
    const name = href ? link(label, href, { "data-code-link": label }) : el("span", label);
    const bar = el("span", null, { class: "bar" });
    bar.style.width = `${Math.max(1, (count / max) * 100)}%`;
    bar.style.background = color;
    r.append(name, el("span", null, { class: "track" }), el("span", `${count} (${Math.round((count / total) * 100)}%)`, { class: "count" }));
    r.children[1].append(bar);
    box.append(r);
  };
  top.forEach((c, i) => line(c.code, c.count, palette[i],
    "#/sessions?" + new URLSearchParams({ status: "REJECTED", code: c.code, since })));
  if (rest > 0) line(`${st.topFailureCodes.length - top.length} other codes`, rest, otherColor);
}

// buckets cuts the window into days, weeks or months (UTC, as the API
// counts days), so that a day and a year both give a readable number of
// bars: up to 31 days, up to 27 weeks, or up to 13 months.
function buckets(st) {
  const start = new Date(st.since.slice(0, 10) + "T00:00:00Z"), end = new Date();
  const days = (end - start) / 86400000;
  const unit = days <= 31 ? "day" : days <= 190 ? "week" : "month";
  const keyOf = (day) => {
    const d = new Date(day + "T00:00:00Z");
    if (unit === "day") return day;
    if (unit === "month") return day.slice(0, 7);
    d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7)); // Monday
    return d.toISOString().slice(0, 10);
  };
  const keys = [];
  for (let d = new Date(start); d <= end; d.setUTCDate(d.getUTCDate() + 1)) {
    const k = keyOf(d.toISOString().slice(0, 10));
    if (keys[keys.length - 1] !== k) keys.push(k);
  }
  const month = new Intl.DateTimeFormat(undefined, { month: "short", year: "2-digit", timeZone: "UTC" });
  const label = (k) => unit === "month" ? month.format(new Date(k + "-01T00:00:00Z")) : k.slice(5);
  const title = (k) => unit === "day" ? k : unit === "week" ? `week of ${k}` : k;
  return { unit, keys, keyOf, label, title };
}

// drawChart draws the top failure codes over the window as stacked bars,
// the codes beyond the palette together in grey.
function drawChart(st) {
  const chart = $("#chart");
  chart.replaceChildren();
  if (!st.topFailureCodes.length) { chart.append(el("p", "No rejections in this window.")); return; }
  const codes = st.topFailureCodes.slice(0, palette.length).map((c) => c.code);
  const b = buckets(st);
  const stacks = new Map(b.keys.map((k) => [k, new Map()]));
  for (const d of st.failuresByDay) {
    const stack = stacks.get(b.keyOf(d.day));
    if (!stack) continue;
    const code = codes.includes(d.code) ? d.code : "";
    stack.set(code, (stack.get(code) || 0) + d.count);
  }
  const totals = [...stacks.values()].map((s) => [...s.values()].reduce((a, n) => a + n, 0));
  const max = Math.max(1, ...totals);
  const W = 640, H = 180, left = 34, right = 8, top = 10;
  const slot = (W - left - right) / b.keys.length;
  const bw = Math.max(2, Math.min(40, slot * 0.75));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 30}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Top rejection reasons per ${b.unit}`);
  // A scale of whole numbers: 0, the middle, the top.
  for (const v of [...new Set([0, Math.round(max / 2), max])]) {
    const y = H - (v / max) * (H - top);
    node("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" });
    node("text", { x: left - 4, y: y + 4, "text-anchor": "end", class: "y" }, String(v));
  }
  const every = Math.ceil(b.keys.length / 13);
  b.keys.forEach((k, i) => {
    const x = left + i * slot + (slot - bw) / 2;
    let y = H;
    const stack = stacks.get(k);
    for (const code of [...codes, ""]) {
      const n = stack.get(code);
      if (!n) continue;
      const h = (n / max) * (H - top);
      y -= h;
      const r = node("rect", { x, y, width: bw, height: h, fill: code ? palette[codes.indexOf(code)] : otherColor, "data-code": code || "other" });
      const t = document.createElementNS(ns, "title");
      t.textContent = `${b.title(k)} ${code || "other codes"}: ${n}`;
      r.append(t);
    }
    if (i % every === 0) node("text", { x: x + bw / 2, y: H + 14, "text-anchor": "middle", class: "x" }, b.label(k));
  });
  chart.append(svg);
  const legend = el("div", null, { class: "legend" });
  st.topFailureCodes.slice(0, palette.length).forEach((c, i) => {
    const s = el("span", null, { "data-code": c.code });
    const swatch = el("i");
    swatch.style.background = palette[i];
    s.append(swatch, `${c.code} (${c.count})`);
    legend.append(s);
  });
  chart.append(legend, el("p", `One bar per ${b.unit} (UTC).`, { class: "note" }));
}

const sessionsState = { cursor: "", stalledCursor: "" };

// sessionQuery is the API query of the overview's filters.
function sessionQuery(params) {
  const q = new URLSearchParams({ limit: "20" });
  for (const name of ["status", "code", "subject"]) if (params.get(name)) q.set(name, params.get(name).trim());
  if (params.get("since")) q.set("since", localDay(params.get("since"), false));
  if (params.get("until")) q.set("until", localDay(params.get("until"), true));
  return q;
}

function describeFilters(params) {
  const parts = [];
  if (params.get("status")) parts.push(params.get("status"));
  if (params.get("code")) parts.push("reason " + params.get("code"));
  if (params.get("subject")) parts.push("subject " + params.get("subject"));
  if (params.get("since")) parts.push("from " + params.get("since"));
  if (params.get("until")) parts.push("to " + params.get("until"));
  return parts.length ? `(${parts.join(", ")})` : "";
}

function subjectLink(subject) {
  const a = el("a", `${subject.type} `, { href: `#/subjects/${enc(subject.id)}?type=${enc(subject.type)}`, "data-subject": subject.id });
  a.append(idText(subject.id));
  return a;
}

function sessionLink(id) { return idLink(id, "#/sessions/" + enc(id), { "data-session": id }); }

function deliveryLink(id) { return idLink(id, "#/deliveries/" + enc(id), { "data-delivery": id }); }

function eventLink(id, text) {
  if (text) return link(text, "#/events/" + enc(id), { title: id });
  return idLink(id, "#/events/" + enc(id));
}

function statusBadge(s) { return el("span", s, { class: "status status-" + s }); }

async function loadSessions(params, more) {
  if (!more) sessionsState.cursor = "";
  const q = sessionQuery(params);
  if (sessionsState.cursor) q.set("cursor", sessionsState.cursor);
  const page = await api("GET", "/api/v1/sessions?" + q);
  const tbody = $("#sessions tbody");
  if (!more) tbody.replaceChildren();
  if (!more && !page.sessions.length) empty(tbody, "No sessions match.");
  for (const s of page.sessions) row(tbody, [sessionLink(s.sessionId), subjectLink(s.subject), statusBadge(s.status), when(s.statusAt)]);
  sessionsState.cursor = page.nextCursor || "";
  $("#more-sessions").hidden = !sessionsState.cursor;
  $("#sessions-filter").textContent = describeFilters(params);
}

// stalledAge says how long a stalled session has waited: in REVIEW since
// its status time, or since its invitation expired.
function stalledAge(s) {
  if (s.stalledReason === "invitation_expired") return `expired ${duration(Date.now() - Date.parse(s.expiresAt))} ago`;
  return `in ${s.status} for ${duration(Date.now() - Date.parse(s.statusAt))}`;
}

async function loadStalled(more) {
  if (!more) sessionsState.stalledCursor = "";
  const q = new URLSearchParams({ limit: "20" });
  if (sessionsState.stalledCursor) q.set("cursor", sessionsState.stalledCursor);
  const page = await api("GET", "/api/v1/sessions/stalled?" + q);
  const tbody = $("#stalled tbody");
  if (!more) tbody.replaceChildren();
  if (!more && !page.sessions.length) empty(tbody, "No stalled sessions.");
  for (const s of page.sessions) {
    row(tbody, [sessionLink(s.sessionId), subjectLink(s.subject), statusBadge(s.status),
      el("span", s.stalledReason, { "data-reason": s.stalledReason }), stalledAge(s)]);
  }
  sessionsState.stalledCursor = page.nextCursor || "";
  $("#more-stalled").hidden = !sessionsState.stalledCursor;
}

// --- Deliveries and sinks ---

// configuredSinks are the names a delivery can be moved to.
let configuredSinks = [];

async function loadSinks() {
  const { items } = await api("GET", "/api/v1/sinks");
  configuredSinks = items.filter((k) => k.configured).map((k) => k.name);
  const tbody = $("#sinks tbody");
  tbody.replaceChildren();
  if (!items.length) empty(tbody, "No sinks yet: kycd serve records its sinks when it starts.");
  for (const k of items) {
    let state = k.configured ? "configured" : "not configured";
    const action = span();
    if (k.pausedAt) {
      state = span(`paused since `, when(k.pausedAt), `: ${k.pauseReason || "410 Gone"}`);
      if (may("operator")) action.append(el("button", "Resume", { "data-resume": k.name }), el("span", null, { class: "error", role: "alert" }));
    }
    const tr = row(tbody, [k.name, k.type || "–", k.target || "–", (k.events || []).join(", ") || "all", state, k.pending, k.dead, action]);
    if (k.pausedAt || (!k.configured && k.pending + k.dead > 0)) tr.classList.add("attention");
  }
}

// concerns names the session and subject a delivery's notification is
// about, as links.
function concerns(d) {
  const s = span();
  if (d.sessionId) s.append(sessionLink(d.sessionId));
  if (d.subject && d.subject.id) s.append(el("br"), subjectLink(d.subject));
  if (!s.childNodes.length) s.append("–");
  return s;
}

// deliveryRow lists a delivery needing attention: a retry, and for one
// whose sink is no longer configured a move to another sink or a drop.
// Its errors show in the row, beside the buttons.
function deliveryRow(tbody, d, retry) {
  const actions = el("span", null, { class: "actions" });
  if (retry && may("operator")) actions.append(el("button", "Retry", { "data-retry": d.id }));
  if (d.orphaned && may("operator")) {
    const pick = el("select", null, { "data-move-select": d.id, "aria-label": "Sink to move it to" });
    for (const name of configuredSinks) if (name !== d.sink) pick.append(el("option", name, { value: name }));
    if (pick.options.length) actions.append(pick, el("button", "Move", { "data-move": d.id }));
    actions.append(el("button", "Drop", { "data-drop": d.id }));
  }
  actions.append(el("span", null, { class: "error", role: "alert" }));
  const sink = el("span", d.sink);
  if (d.orphaned) sink.append(" ", badge("(sink not configured)"));
  if (d.sinkPaused) sink.append(" ", badge("(sink paused)"));
  row(tbody, [deliveryLink(d.id), d.notificationType, concerns(d), sink, d.attemptCount, d.lastError, actions]);
}

// overviewRows is how many dead or orphaned deliveries the overview
// lists; the Deliveries page pages through all of them.
const overviewRows = 10;

// loadDeliveryList fills a table with a page of deliveries; more appends
// the next page. On the overview, a longer list leads to the Deliveries
// page instead.
async function loadDeliveryList(table, query, retry, noneText, more) {
  const tbody = $(`#${table} tbody`);
  const overview = parseHash().parts[0] !== "deliveries";
  const q = new URLSearchParams(query);
  q.set("limit", overview ? String(overviewRows) : "100");
  if (more && tbody.dataset.cursor) q.set("cursor", tbody.dataset.cursor);
  const page = await api("GET", "/api/v1/deliveries?" + q);
  if (!more) tbody.replaceChildren();
  $(`#${table}-more`)?.remove();
  if (!more && !page.items.length) empty(tbody, noneText);
  for (const d of page.items) deliveryRow(tbody, d, retry);
  tbody.dataset.cursor = page.nextCursor || "";
  if (!page.nextCursor) return;
  const next = overview ? link("More on the Deliveries page", "#/deliveries", { id: `${table}-more` })
    : el("button", "More", { id: `${table}-more`, "data-more": table });
  $(`#${table}`).after(next);
}

const loadDead = (more) => loadDeliveryList("dead", { state: "dead" }, true, "No dead deliveries.", more);
const loadOrphaned = (more) => loadDeliveryList("orphaned", { state: "pending", orphaned: "true" }, false, "No orphaned deliveries.", more);

// --- Dead-letter triage: the Deliveries page ---

// triageFields are the filters of the Deliveries page, named as the API's
// query parameters; the page's URL holds them (#/deliveries?sink=crm).
const triageFields = ["state", "sink", "type", "session", "subject", "since", "until", "error"];

// triageFilter is the API's filter of the page's URL: state dead unless
// it says otherwise (state= is any state), days as the browser's days.
function triageFilter(params) {
  const f = {};
  for (const name of triageFields) {
    const v = params.get(name);
    if (v) f[name] = name === "since" ? localDay(v, false) : name === "until" ? localDay(v, true) : v;
  }
  if (!params.has("state")) f.state = "dead";
  return f;
}

// loadTriage fills the filters from the URL, the groups of what matches,
// the button that retries all of it (with their count), and the matching
// deliveries.
async function loadTriage(params) {
  const form = $("#triage-filter");
  for (const name of triageFields) form.elements[name].value = name === "state" && !params.has("state") ? "dead" : params.get(name) || "";
  $("#sink-names").replaceChildren(...configuredSinks.map((n) => el("option", null, { value: n })));
  const filter = triageFilter(params);
  const sum = await api("GET", "/api/v1/deliveries/summary?" + new URLSearchParams(filter));
  const tbody = $("#triage-groups tbody");
  tbody.replaceChildren();
  if (!sum.groups.length) empty(tbody, "No delivery matches.");
  for (const g of sum.groups) {
    const narrow = new URLSearchParams(params);
    narrow.set("sink", g.sink);
    if (g.lastError) narrow.set("error", g.lastError); else narrow.delete("error");
    row(tbody, [g.sink, g.lastError || "(none)", g.count, link("Only these", "#/deliveries?" + narrow, { "data-group": `${g.sink} ${g.lastError}` })]);
  }
  $("#triage-filter-text").textContent = `${sum.total} matching ` + Object.entries(filter).map(([k, v]) => `${k}=${v}`).join(" ");
  const retry = $("#retry-matching");
  // A retry takes pending and dead deliveries only; an empty filter is
  // refused (it would take every delivery).
  retry.hidden = !sum.total || !["dead", "pending"].includes(filter.state) || !may("operator");
  retry.textContent = `Retry all ${sum.total} matching`;
  retry.dataset.filter = JSON.stringify(filter);
  retry.disabled = false;
  await loadMatching(false);
}

const loadMatching = (more) => loadDeliveryList("matching", triageFilter(parseHash().params), true, "No delivery matches.", more);

async function retryMatching(b) {
  const filter = JSON.parse(b.dataset.filter);
  await act(b, async () => {
    const res = await api("POST", "/api/v1/deliveries/retry", filter);
    $("#retry-matching-result").textContent = `Retried ${res.retried} of ${res.matched} matching.`;
    await loadDeliveries(parseHash().params);
  });
}

async function loadDeliveries(params) {
  await guard($("#sinks-error"), loadSinks);
  const lists = [guard($("#orphaned-error"), () => loadOrphaned(false))];
  if (params) lists.push(guard($("#triage-error"), () => loadTriage(params)));
  else lists.push(guard($("#dead-error"), () => loadDead(false)));
  await Promise.all(lists);
}

// rowError is the error box beside a button: in its row or its block.
function rowError(b) {
  return b.parentElement.querySelector(".error") || b.closest("tr, p, div")?.querySelector(".error");
}

// act runs the action of a button, the button disabled meanwhile, its
// error shown beside it.
async function act(b, fn) {
  const box = rowError(b);
  if (box) box.textContent = "";
  b.disabled = true;
  try {
    await fn();
  } catch (err) {
    report(box, err);
    b.disabled = false;
  }
}

async function deliveryAction(e) {
  const b = e.target.closest("[data-retry],[data-move],[data-drop]");
  if (!b) return;
  await act(b, async () => {
    if (b.dataset.retry) await api("POST", `/api/v1/deliveries/${enc(b.dataset.retry)}/retry`);
    if (b.dataset.drop) await api("POST", `/api/v1/deliveries/${enc(b.dataset.drop)}/drop`);
    if (b.dataset.move) {
      const pick = b.closest("tr").querySelector(`[data-move-select]`);
      await api("POST", `/api/v1/deliveries/${enc(b.dataset.move)}/move`, { sink: pick.value });
    }
    await loadDeliveries(parseHash().parts[0] === "deliveries" ? parseHash().params : null);
  });
}

// --- Quarantine ---

function problemText(p) {
  const fields = (p?.errors || []).map((e) => `${e.field || "body"} ${e.detail}`).join("; ");
  return fields || p?.detail || "";
}

// replayCell offers a replay only where it can succeed, and says why not
// elsewhere.
function replayCell(q) {
  if (q.replayable && may("operator")) return el("button", "Replay", { "data-replay": q.id });
  if (q.replayable) return el("span", "can succeed now (an operator replays it)", { class: "note" });
  if (q.replayedAt) return span("replayed ", when(q.replayedAt), ` (${q.replayResult})`);
  if (q.discardedAt) return span("discarded ", when(q.discardedAt), ` by ${q.discardedBy}`);
  return el("span", q.replayBlocked || "cannot succeed", { class: "note", "data-blocked": q.id });
}

function discardButton(q) {
  return q.replayedAt || q.discardedAt || !may("operator") ? "" : el("button", "Discard", { "data-discard": q.id, title: "Kept, marked discarded, out of this list" });
}

async function loadQuarantineList(all) {
  const { items } = await api("GET", "/api/v1/quarantine" + (all ? "?all=1" : ""));
  const tbody = $("#quarantine tbody");
  tbody.replaceChildren();
  if (!items.length) empty(tbody, "Nothing in quarantine.");
  for (const q of items) {
    const actions = el("span", null, { class: "actions" });
    actions.append(link("View", "#/quarantine/" + enc(q.id), { "data-view-quarantined": q.id }));
    const discard = discardButton(q);
    if (discard) actions.append(discard);
    actions.append(el("span", null, { class: "error", role: "alert" }));
    const tr = row(tbody, [when(q.receivedAt), q.reason, q.eventId ? idText(q.eventId) : "–", problemText(q.problem), replayCell(q), actions]);
    tr.querySelector("[data-replay]")?.parentElement.append(el("span", null, { class: "error", role: "alert" }));
  }
}

async function loadQuarantine(params) {
  $("#quarantine-all").checked = params.get("all") === "1";
  await guard($("#quarantine-error"), () => loadQuarantineList($("#quarantine-all").checked));
}

// quarantineAction replays or discards; a discard asks to be clicked
// twice, since it cannot be undone.
async function quarantineAction(e) {
  const b = e.target.closest("[data-replay],[data-discard]");
  if (!b) return;
  if (b.dataset.discard && !b.dataset.armed) {
    b.dataset.armed = "1";
    b.textContent = "Discard for good?";
    return;
  }
  await act(b, async () => {
    if (b.dataset.replay) {
      const res = await api("POST", `/api/v1/quarantine/${enc(b.dataset.replay)}/replay`);
      b.replaceWith(el("span", `replayed: ${res.outcome}${res.duplicate ? " (duplicate)" : ""}`, { class: "note" }));
    }
    if (b.dataset.discard) await api("POST", `/api/v1/quarantine/${enc(b.dataset.discard)}/discard`);
    await route();
  });
}

// --- A session ---

async function showSession(id, params, turn) {
  const sec = $("#session");
  sessionShown = null;
  for (const sel of ["#checks tbody", "#history tbody", "#other-sessions tbody", "#notifications"]) $(sel).replaceChildren();
  for (const sel of ["#session-status", "#session-subject", "#session-error", "#notifications-error", "#other-sessions-error"]) $(sel).textContent = "";
  $("#session-id").textContent = id;
  let s;
  try {
    s = await api("GET", "/api/v1/sessions/" + enc(id));
  } catch (err) {
    if (!current(turn)) return;
    sec.hidden = false;
    report($("#session-error"), err.status === 404 ? new Error(`No session has the id ${id}. Try the search box: it also finds subjects and events.`) : err);
    return;
  }
  if (!current(turn)) return;
  sessionShown = s;
  $("#session-id").textContent = s.sessionId;
  const status = $("#session-status");
  status.append(statusBadge(s.status), " since ", when(s.statusAt), ` (${ago(s.statusAt)}), set by event `, eventLink(s.statusEventId));
  if (s.expiresAt) status.append(" · invitation expires ", when(s.expiresAt));
  $("#session-subject").append("Subject ", subjectLink(s.subject));

  const checks = $("#checks tbody");
  const guidance = new Map(s.failures.map((f) => [f.checkType + "\u0000" + f.code, f.guidance]));
  if (!s.checks.length) empty(checks, "No checks reported.");
  for (const c of s.checks) {
    if (!c.reasons.length) row(checks, [c.type, c.state, "", "", ""]);
    for (const r of c.reasons) {
      const tr = row(checks, [c.type, c.state, r.code, r.message, guidance.get(c.type + "\u0000" + r.code) || ""]);
      tr.lastChild.classList.add("guidance");
    }
  }

  const history = $("#history tbody");
  const highlight = params.get("event");
  for (const h of s.history) {
    const effect = h.applied ? "applied" : span(badge("stale", { "data-stale": h.eventId }), " older than the status it would change: kept, no effect");
    const source = h.source === "reconciliation" ? badge("reconciliation", { title: "found in Ralio's REST API by kycd reconcile, not received as a webhook" }) : "webhook";
    const stamped = h.clockSkew
      ? span(when(h.timestamp), " ", badge("clock skew", { "data-clock-skew": h.eventId, title: "stamped more than --max-clock-skew after its receipt" }), " ordered at ", when(h.orderedAt))
      : when(h.timestamp);
    const tr = row(history, [stamped, when(h.receivedAt), eventLink(h.eventId, h.event), h.status, effect, source]);
    if (!h.applied) tr.classList.add("stale");
    if (highlight && h.eventId === highlight.toLowerCase()) tr.classList.add("highlight");
  }
  sec.hidden = false;
  await Promise.all([
    guard($("#notifications-error"), async () => {
      await loadNotifications(s.sessionId, turn);
      const marked = params.get("notification");
      const art = marked && $(`[data-notification="${CSS.escape(marked.toLowerCase())}"]`);
      if (art) { art.classList.add("highlight"); art.scrollIntoView({ block: "nearest" }); }
    }),
    guard($("#other-sessions-error"), () => loadOtherSessions(s, turn)),
  ]);
}

// sessionTargets are the audit targets of what a session's page shows:
// its subject, its notifications and their deliveries.
function sessionTargets(s, notifications) {
  const t = [`subject:${s.subject.type}:${s.subject.id}`, `subject:${s.subject.id}`];
  for (const n of notifications) {
    t.push("notification:" + n.id);
    for (const d of n.deliveries) t.push("delivery:" + d.id);
  }
  return t;
}

// sendButton offers a new round of a delivery where it can be sent: not
// to a role that may not, not for one dropped (given up for good), not
// for one pending for a sink no longer configured (a move is what it
// needs).
function sendButton(d) {
  if (!may("operator") || d.state === "dropped" || (d.state === "pending" && d.orphaned)) return null;
  return el("button", sendLabel(d), { "data-send": d.id });
}

// sendLabel names what a retry does to a delivery in its state.
function sendLabel(d) {
  switch (d.state) {
    case "delivered": return "Send again";
    case "pending": return "Send now";
    default: return "Retry";
  }
}

function attemptsList(d) {
  if (!d.attempts?.length) return el("span", "none yet");
  const det = el("details");
  det.append(el("summary", `${d.attempts.length} attempt${d.attempts.length > 1 ? "s" : ""}`));
  const ol = el("ol", null, { class: "attempts" });
  for (const a of d.attempts) {
    const li = el("li");
    li.append(when(a.at), ` ${a.outcome}`, a.statusCode ? ` (${a.statusCode})` : "", ` in ${a.durationMs} ms`, a.error ? `: ${a.error}` : "");
    ol.append(li);
  }
  det.append(ol);
  return det;
}

function deliveryState(d) {
  const s = span(el("strong", d.state, { class: "state state-" + d.state, "data-delivery-state": d.id }));
  if (d.state === "pending" && d.nextAttemptAt) s.append(" next ", when(d.nextAttemptAt));
  if (d.orphaned) s.append(" ", badge("sink not configured"));
  if (d.sinkPaused) s.append(" ", badge("sink paused"));
  return s;
}

// sessionShown is the session on the page, with its notifications, for
// the audit trail of what the page shows.
let sessionShown = null;

async function loadNotifications(sessionId, turn) {
  const { items } = await api("GET", `/api/v1/sessions/${enc(sessionId)}/notifications`);
  if (!current(turn)) return;
  if (sessionShown?.sessionId === sessionId) loadObjectAudit("of this session, its subject, notifications and deliveries", sessionTargets(sessionShown, items), turn);
  const box = $("#notifications");
  box.replaceChildren();
  if (!items.length) { box.append(el("p", "No notification: nothing applied to this session notified your systems.", { class: "note" })); return; }
  for (const n of items) {
    const art = el("article", null, { class: "notification", "data-notification": n.id });
    const title = el("h4");
    title.append(el("code", n.type), " written ", when(n.createdAt), " for event ", eventLink(n.eventId));
    art.append(title);
    const sent = (n.notification.failures || []).filter((f) => f.guidance);
    if (sent.length) {
      const ul = el("ul", null, { class: "sent-guidance" });
      for (const f of sent) ul.append(el("li", `${f.code}: “${f.guidance}”`));
      art.append(el("p", "Guidance it carried:", { class: "note" }), ul);
    }
    const table = el("table", null, { class: "deliveries" });
    const head = table.createTHead().insertRow();
    for (const h of ["Delivery", "Sink", "State", "Attempts", "Last error", ""]) head.append(el("th", h));
    const tbody = table.createTBody();
    if (!n.deliveries.length) empty(tbody, "No delivery: no sink took this type.");
    for (const d of n.deliveries) {
      const actions = el("span", null, { class: "actions" });
      const send = sendButton(d);
      if (send) actions.append(send, el("span", null, { class: "error", role: "alert" }));
      row(tbody, [deliveryLink(d.id), d.sink, deliveryState(d), attemptsList(d), d.lastError || "", actions]);
    }
    art.append(table);
    box.append(art);
  }
}

// sendAgain starts a new round for a delivery and follows it until the
// dispatcher has tried it (or 20 s pass), so the person who clicked sees
// the outcome where they clicked.
//
// The page shows the new round at once (the delivery pending, the retry in
// the audit trail), then again once the dispatcher has tried it. The
// attempts are counted before the retry: the dispatcher, woken by it, may
// try it before the first look.
async function sendAgain(b) {
  const id = b.dataset.send;
  const turn = routing;
  const { parts } = parseHash();
  const onDelivery = parts[0] === "deliveries";
  const sessionId = onDelivery ? deliveryShown?.sessionId : parts[1];
  const refresh = () => onDelivery ? showDelivery(id, turn) : loadNotifications(parts[1], turn);
  await act(b, async () => {
    const before = await attemptsOf(id, sessionId);
    await api("POST", `/api/v1/deliveries/${enc(id)}/retry`);
    if (!current(turn)) return;
    await refresh();
    for (let i = 0; i < 80 && current(turn); i++) {
      const now = await attemptsOf(id, sessionId);
      if (now.attempts >= 0 ? now.attempts > before.attempts : now.state !== "pending") break;
      await sleep(250);
    }
    if (current(turn)) await refresh();
  });
}

// attemptsOf is how a delivery stands, read without its notification's
// personal data (whose read by an admin is audited, once per look): its
// attempts, from its session's notifications, or without a session only
// its state (attempts -1), from the search.
async function attemptsOf(id, sessionId) {
  if (sessionId) {
    const { items } = await api("GET", `/api/v1/sessions/${enc(sessionId)}/notifications`);
    for (const d of items.flatMap((n) => n.deliveries)) {
      if (d.id === id) return { state: d.state, attempts: d.attempts?.length ?? 0 };
    }
  }
  const { items } = await api("GET", "/api/v1/search?" + new URLSearchParams({ q: id }));
  return { state: items[0]?.status, attempts: -1 };
}

async function loadOtherSessions(s, turn) {
  const sub = await api("GET", `/api/v1/subjects/${enc(s.subject.id)}?type=${enc(s.subject.type)}`);
  if (!current(turn)) return;
  const tbody = $("#other-sessions tbody");
  tbody.replaceChildren();
  const others = sub.sessions.filter((o) => o.sessionId !== s.sessionId);
  if (!others.length) empty(tbody, "None: this is the subject's only session.");
  for (const o of others) row(tbody, [sessionLink(o.sessionId), statusBadge(o.status), when(o.statusAt)]);
}

// --- A subject ---

async function showSubject(id, params, turn) {
  const sec = $("#subject");
  $("#subject-id").textContent = id;
  $("#subject-about").replaceChildren();
  $("#subject-error").textContent = "";
  const tbody = $("#subject-sessions tbody");
  tbody.replaceChildren();
  let sub;
  try {
    const type = params.get("type");
    sub = await api("GET", `/api/v1/subjects/${enc(id)}${type ? "?type=" + enc(type) : ""}`);
  } catch (err) {
    if (!current(turn)) return;
    sec.hidden = false;
    report($("#subject-error"), err.status === 404 ? new Error(`No subject has the id ${id}.`) : err);
    return;
  }
  if (!current(turn)) return;
  const about = $("#subject-about");
  about.append(el("strong", sub.type), ` ${sub.id}`);
  if (sub.level) about.append(" · level ", el("strong", sub.level), " since ", when(sub.levelAt));
  about.append(` · ${sub.sessions.length} session${sub.sessions.length === 1 ? "" : "s"}`);
  if (!sub.sessions.length) empty(tbody, "No sessions.");
  for (const s of sub.sessions) row(tbody, [sessionLink(s.sessionId), statusBadge(s.status), when(s.statusAt)]);
  sec.hidden = false;
  loadObjectAudit("of this subject", [`subject:${sub.type}:${sub.id}`, `subject:${sub.id}`], turn);
}

// --- An event ---

function about(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    const dd = el("dd");
    dd.append(v instanceof Node ? v : String(v));
    dl.append(el("dt", k), dd);
  }
}

// pretty indents a JSON body; anything else shows as it is.
function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

async function showEvent(id, turn) {
  const sec = $("#event");
  $("#event-id").textContent = id;
  $("#event-error").textContent = "";
  $("#event-about").replaceChildren();
  $("#event-body").textContent = "";
  // The body is personal data: an admin reads it, audited; any other role
  // the event without it.
  const bodies = may("admin");
  $("#event-body").hidden = !bodies;
  $("#event-no-body").hidden = bodies;
  let ev;
  try {
    ev = await api("GET", "/api/v1/events/" + enc(id) + (bodies ? "" : "/summary"));
  } catch (err) {
    if (!current(turn)) return;
    sec.hidden = false;
    report($("#event-error"), err.status === 404 ? new Error(`No event has the id ${id}.`) : err);
    return;
  }
  if (!current(turn)) return;
  about($("#event-about"), [["Type", ev.type], ["Event time", when(ev.timestamp)], ["Received", when(ev.receivedAt)],
    ["Outcome", ev.outcome], ["Session", ev.sessionId ? sessionLink(ev.sessionId) : ""], ["Body hash", ev.bodyHash]]);
  if (bodies) $("#event-body").textContent = ev.body ? JSON.stringify(ev.body, null, 2) : "(purged: bodies are kept for --retention)";
  sec.hidden = false;
  loadObjectAudit("of this event", ["event:" + ev.eventId], turn);
}

// --- A delivery ---

// deliveryShown is the delivery on the page.
let deliveryShown = null;

async function showDelivery(id, turn) {
  const sec = $("#delivery");
  deliveryShown = null;
  $("#delivery-id").textContent = id;
  $("#delivery-error").textContent = "";
  let d;
  try {
    d = await api("GET", "/api/v1/deliveries/" + enc(id));
  } catch (err) {
    if (!current(turn)) return;
    sec.hidden = false;
    report($("#delivery-error"), err.status === 404 ? new Error(`No delivery has the id ${id}.`) : err);
    return;
  }
  if (!current(turn)) return;
  deliveryShown = d;
  about($("#delivery-about"), [["State", deliveryState(d)], ["Notification", span(`${d.notificationType} `, idText(d.notificationId))],
    ["Concerns", concerns(d)], ["Sink", d.sink], ["Attempts", d.attemptCount], ["Last error", d.lastError],
    ["Created", when(d.createdAt)], ["Updated", when(d.updatedAt)]]);
  const actions = $("#delivery-actions");
  const send = sendButton(d);
  actions.replaceChildren(...(send ? [send, el("span", null, { class: "error", role: "alert" })] : []));
  const attempts = $("#delivery-attempts tbody");
  attempts.replaceChildren();
  if (!d.attempts?.length) empty(attempts, "No attempt yet.");
  for (const a of d.attempts || []) {
    const answer = a.responseBody ? el("pre", a.responseBody, { class: "body answer" }) : "";
    row(attempts, [a.n, when(a.at), a.outcome, a.statusCode || "–", `${a.durationMs} ms`, a.error || "", answer]);
  }
  $("#delivery-payload").textContent = d.notification ? JSON.stringify(d.notification, null, 2) : "";
  $("#delivery-payload-note").textContent = d.notification ? "(as sent; personal data only for an admin token)" : "";
  const hist = $("#delivery-history tbody");
  hist.replaceChildren();
  if (!d.actions?.length) empty(hist, "None.");
  for (const a of d.actions || []) row(hist, [when(a.at), a.actor, a.action, a.from, a.to || ""]);
  sec.hidden = false;
  loadObjectAudit("of this delivery and its notification", ["delivery:" + d.id, "notification:" + d.notificationId], turn);
}

// --- A quarantined body ---

async function showQuarantined(id, turn) {
  const sec = $("#quarantined");
  $("#quarantined-id").textContent = id;
  $("#quarantined-error").textContent = "";
  // The bodies are personal data: an admin reads them, audited; any other
  // role what the list shows.
  const bodies = may("admin");
  $("#quarantined-bodies").hidden = !bodies;
  $("#quarantined-no-body").hidden = bodies;
  $("#quarantined-diff").hidden = true;
  let q;
  try {
    q = await api("GET", "/api/v1/quarantine/" + enc(id) + (bodies ? "" : "/summary"));
  } catch (err) {
    if (!current(turn)) return;
    sec.hidden = false;
    report($("#quarantined-error"), err.status === 404 ? new Error(`No quarantined body has the id ${id}.`) : err);
    return;
  }
  if (!current(turn)) return;
  about($("#quarantined-about"), [["Received", when(q.receivedAt)], ["Reason", q.reason], ["Answered", `${q.problem.status || ""} ${q.problem.title || ""}`],
    ["Problem", problemText(q.problem)], ["Event", q.eventId ? idText(q.eventId) : ""],
    ["Replay", q.replayable ? "can succeed now" : replayCell(q)]]);
  const actions = $("#quarantined-actions");
  actions.replaceChildren();
  if (q.replayable) actions.append(replayCell(q));
  const discard = discardButton(q);
  if (discard) actions.append(discard);
  actions.append(el("span", null, { class: "error", role: "alert" }));
  const refused = $("#quarantined-body"), original = $("#quarantined-original-body");
  refused.textContent = q.body === undefined ? (bodies ? "(empty, or purged)" : "") : pretty(q.body);
  $("#quarantined-original").hidden = q.originalBody === undefined;
  original.textContent = q.originalBody === undefined ? "" : pretty(q.originalBody);
  if (q.body !== undefined && q.originalBody !== undefined) {
    markDifferences(refused, original, pretty(q.body), pretty(q.originalBody));
    $("#quarantined-diff").hidden = false;
  }
  sec.hidden = false;
  loadObjectAudit("of this quarantined body", ["quarantine:" + q.id], turn);
}

// markDifferences writes the lines of texts a and b into pre elements
// pa and pb, marking the lines that are not common to both: those outside
// a longest common subsequence of lines. Written here, as the page loads
// nothing but its own three files; the bodies are a few hundred lines at
// most, and past 2,000 lines each only the texts are shown.
function markDifferences(pa, pb, a, b) {
  const x = a.split("\n"), y = b.split("\n");
  if (x.length > 2000 || y.length > 2000) return;
  // lcs[i][j]: the length of a longest common subsequence of x[i:], y[j:].
  const lcs = Array.from({ length: x.length + 1 }, () => new Uint16Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const keepX = new Set(), keepY = new Set();
  for (let i = 0, j = 0; i < x.length && j < y.length;) {
    if (x[i] === y[j]) { keepX.add(i++); keepY.add(j++); } else if (lcs[i + 1][j] >= lcs[i][j + 1]) i++; else j++;
  }
  const write = (pre, lines, keep) => {
    pre.replaceChildren(...lines.map((line, i) => {
      const l = el(keep.has(i) ? "span" : "mark", line + (i < lines.length - 1 ? "\n" : ""), { class: "line" });
      if (!keep.has(i)) l.dataset.differs = "";
      return l;
    }));
  };
  write(pa, x, keepX);
  write(pb, y, keepY);
}

// --- Search ---

// kinds names each kind of record a search finds.
const kinds = { session: "Session", subject: "Subject", event: "Event", notification: "Notification", delivery: "Delivery", quarantine: "Quarantined body" };

// showSearch finds what has the id q, or an id that begins with q, with
// the API's one search (GET /api/v1/search: ids, types and states, no
// personal data, any role). One match opens it; several are listed; none,
// or a q the search does not take, is said beside the search box.
async function showSearch(q, turn) {
  q = q.trim();
  $("#q").value = q;
  $("#results-q").textContent = q;
  $("#search-error").textContent = "";
  $("#results-error").textContent = "";
  $("#results-truncated").textContent = "";
  const list = $("#results-list");
  list.replaceChildren();
  if (!q) return;
  let res;
  try {
    res = await api("GET", "/api/v1/search?" + new URLSearchParams({ q }));
  } catch (err) {
    if (!current(turn)) return;
    $("#results").hidden = false;
    report($("#search-error"), err);
    $("#results-error").textContent = $("#search-error").textContent;
    return;
  }
  if (!current(turn)) return;
  if (res.items.length === 1 && !res.truncated.length) { location.replace(res.items[0].href); return; }
  $("#results").hidden = false;
  for (const f of res.items) {
    const li = el("li", null, { "data-found": f.kind });
    const a = el("a", `${kinds[f.kind] || f.kind} `, { href: f.href });
    a.append(idText(f.id));
    const about = [f.type, f.status, f.sink && "to " + f.sink].filter(Boolean).join(", ");
    li.append(a, about ? ` (${about})` : "");
    list.append(li);
  }
  if (res.truncated.length) {
    $("#results-truncated").textContent = `More ${res.truncated.map((k) => kinds[k] || k).join(", ")} records begin with ${res.q} than are listed: type more of the id.`;
  }
  if (!res.items.length) {
    const problem = `Nothing has the id ${q}, or an id that begins with it: no session, subject, event, notification, delivery or quarantined body.`;
    $("#search-error").textContent = problem;
    $("#results-error").textContent = problem;
  }
}

// --- Who is signed in, and the audit trail ---

const auditState = { cursor: "" };

// loadWhoami learns who is signed in, and with which role: what the pages
// offer follows from it.
async function loadWhoami() {
  const who = await api("GET", "/api/v1/whoami");
  me.name = who.name;
  me.role = who.role;
  $("#whoami").textContent = `Signed in as ${who.name} (${who.role})`;
  $("#nav-audit").hidden = !may("admin");
}

function auditRow(tbody, a) {
  row(tbody, [when(a.at), a.actor, a.action, a.target, a.remote || "CLI", a.outcome, a.detail || ""]);
}

async function loadAudit(more) {
  const q = new URLSearchParams({ limit: "50" });
  for (const f of ["actor", "action", "target"]) if ($("#audit-" + f).value.trim()) q.set(f, $("#audit-" + f).value.trim());
  if (more && auditState.cursor) q.set("cursor", auditState.cursor);
  const page = await api("GET", "/api/v1/audit?" + q);
  const tbody = $("#audit-trail tbody");
  if (!more) tbody.replaceChildren();
  if (!more && !page.items.length) empty(tbody, "Nothing recorded.");
  for (const a of page.items) auditRow(tbody, a);
  auditState.cursor = page.nextCursor || "";
  $("#more-audit").hidden = !page.nextCursor;
}

// objectAuditRows is how many entries an object's page lists: the newest.
const objectAuditRows = 20;

// loadObjectAudit shows an admin, below the object on screen, the audit
// entries of its targets (each matched whole), newest first; a page shown
// to another role has none, the trail being the admin's to read.
async function loadObjectAudit(what, targets, turn) {
  if (!may("admin")) return;
  const box = $("#object-audit-error");
  try {
    const pages = await Promise.all(targets.map((t) => api("GET", "/api/v1/audit?" + new URLSearchParams({ target: t, limit: String(objectAuditRows) }))));
    if (!current(turn)) return;
    const seen = new Set();
    const items = pages.flatMap((p) => p.items).filter((a) => !seen.has(a.id) && seen.add(a.id))
      .sort((a, b) => b.id - a.id).slice(0, objectAuditRows);
    const tbody = $("#object-audit-trail tbody");
    tbody.replaceChildren();
    if (!items.length) empty(tbody, "Nothing recorded.");
    for (const a of items) auditRow(tbody, a);
    $("#object-audit-of").textContent = `(${what}; newest first)`;
    box.textContent = "";
  } catch (err) {
    if (!current(turn)) return;
    report(box, err);
  }
  $("#object-audit").hidden = false;
}

// --- Start ---

function logout(message) {
  sessionStorage.removeItem(tokenKey);
  me.name = me.role = "";
  $("#whoami").textContent = "";
  $("#nav-audit").hidden = true;
  $("#app").hidden = true;
  $("#logout").hidden = true;
  $("#nav").hidden = true;
  $("#search").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

function start() {
  $("#app").hidden = false;
  $("#login").hidden = true;
  $("#logout").hidden = false;
  $("#nav").hidden = false;
  $("#search").hidden = false;
  // The role first: a page offers what the role may do.
  loadWhoami().then(route).catch((err) => report(null, err));
}

// setParams moves the overview to the same filters with changes.
function setParams(changes) {
  const { parts, params } = parseHash();
  const path = parts[0] === "sessions" && !parts[1] ? "sessions" : "";
  for (const [k, v] of Object.entries(changes)) { if (v) params.set(k, v); else params.delete(k); }
  go(path, params);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(tokenKey, $("#token").value.trim());
    $("#token").value = "";
    start();
  });
  $("#logout").addEventListener("click", () => logout());
  $("#search").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("#q").value.trim();
    $("#search-error").textContent = q ? "" : "Type an id, or its first 8 digits.";
    if (!q) return;
    const target = "#/search?" + new URLSearchParams({ q });
    if (location.hash === target) route(); else location.hash = target;
  });
  $("#window").addEventListener("change", () => setParams({ window: $("#window").value === statsDefaultWindow ? "" : $("#window").value }));
  $("#filters").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target.elements;
    setParams({ status: f.status.value, code: f.code.value.trim(), since: f.since.value, until: f.until.value, subject: f.subject.value.trim() });
  });
  $("#more-sessions").addEventListener("click", () => guard($("#sessions-error"), () => loadSessions(overviewParams(), true)));
  $("#more-stalled").addEventListener("click", () => guard($("#stalled-error"), () => loadStalled(true)));
  $("#more-audit").addEventListener("click", () => guard($("#audit-error"), () => loadAudit(true)));
  $("#audit-filter").addEventListener("submit", (e) => { e.preventDefault(); guard($("#audit-error"), () => loadAudit(false)); });
  $("#statuses").addEventListener("click", (e) => {
    const tile = e.target.closest("[data-status]");
    if (tile) setParams({ status: tile.dataset.status });
  });
  $("#dead").addEventListener("click", deliveryAction);
  $("#matching").addEventListener("click", deliveryAction);
  $("#retry-matching").addEventListener("click", (e) => retryMatching(e.currentTarget));
  $("#triage-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target.elements, params = new URLSearchParams();
    for (const name of triageFields) {
      const v = f[name].value.trim();
      if (v || (name === "state" && !v)) params.set(name, v);
    }
    go("deliveries", params);
  });
  $("#orphaned").addEventListener("click", deliveryAction);
  $("#app").addEventListener("click", (e) => {
    const b = e.target.closest("[data-more]");
    if (b) guard($(`#${b.dataset.more === "matching" ? "triage" : b.dataset.more}-error`), () => ({ dead: loadDead, orphaned: loadOrphaned, matching: loadMatching })[b.dataset.more](true));
  });
  $("#sinks").addEventListener("click", async (e) => {
    const b = e.target.closest("[data-resume]");
    if (b) await act(b, async () => { await api("POST", `/api/v1/sinks/${enc(b.dataset.resume)}/resume`); await loadDeliveries(parseHash().parts[0] === "deliveries" ? parseHash().params : null); });
  });
  $("#quarantine").addEventListener("click", quarantineAction);
  $("#quarantined").addEventListener("click", quarantineAction);
  $("#quarantine-all").addEventListener("change", (e) => go("quarantine", e.target.checked ? new URLSearchParams({ all: "1" }) : null));
  for (const sel of ["#notifications", "#delivery-actions"]) {
    $(sel).addEventListener("click", (e) => {
      const b = e.target.closest("[data-send]");
      if (b) sendAgain(b);
    });
  }
  $("#app").addEventListener("click", async (e) => {
    const b = e.target.closest("[data-copy]");
    if (!b) return;
    try {
      await navigator.clipboard.writeText(document.getElementById(b.dataset.copy).textContent);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select the id to copy it";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
  window.addEventListener("hashchange", () => { if (sessionStorage.getItem(tokenKey)) route().catch((err) => report(null, err)); });
  if (sessionStorage.getItem(tokenKey)) start(); else logout();
});
