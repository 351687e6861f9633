// kycd's dashboard: a page over the read API. The API token stays in this
// tab's sessionStorage and goes out as a Bearer header, never as a cookie,
// so no other site can make the browser act with it. Every value from the
// API is written with textContent, never as HTML.
"use strict";

const tokenKey = "kycd-token";
const $ = (sel) => document.querySelector(sel);
const state = { status: "", cursor: "", stalledCursor: "", auditCursor: "" };
const palette = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"];

class Unauthorized extends Error {}

async function api(method, path, payload) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(tokenKey) };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
  if (resp.status === 401) throw new Unauthorized();
  const body = resp.headers.get("Content-Type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const fields = (body?.errors || []).map((e) => `${e.field || "body"} ${e.detail}`).join("; ");
    throw new Error(`${body?.detail || resp.statusText}${fields ? ": " + fields : ""}`);
  }
  return body;
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function row(tbody, cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.append(c); else td.textContent = c ?? "";
    tr.append(td);
  }
  tbody.append(tr);
  return tr;
}

function when(t) { return t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–"; }

function showError(err) {
  if (err instanceof Unauthorized) { logout("The token was refused."); return; }
  $("#error").textContent = err.message;
}

async function loadStats() {
  const st = await api("GET", "/api/v1/stats?window=" + $("#window").value);
  const tiles = $("#statuses");
  tiles.replaceChildren();
  const all = el("button", null, { class: "tile", "aria-pressed": String(state.status === ""), "data-status": "" });
  all.append(el("span", Object.values(st.sessionsByStatus).reduce((a, b) => a + b, 0), { class: "n" }), "all");
  tiles.append(all);
  for (const s of ["REJECTED", "REVIEW", "VERIFIED", "EXPIRED", "NOT_STARTED", "STARTED"]) {
    if (!(s in st.sessionsByStatus)) continue;
    const b = el("button", null, { class: "tile status-" + s, "aria-pressed": String(state.status === s), "data-status": s });
    b.append(el("span", st.sessionsByStatus[s], { class: "n" }), s);
    tiles.append(b);
  }
  drawChart(st);
}

// chartDays is every day of the window, so quiet days show as gaps, or for
// windows over a month only the days that had rejections.
function chartDays(st) {
  const seen = [...new Set(st.failuresByDay.map((d) => d.day))];
  const first = new Date(st.since.slice(0, 10) + "T00:00:00Z"), today = new Date();
  if ((today - first) / 86400000 > 31) return seen;
  const days = [];
  for (let d = first; d <= today; d = new Date(d.getTime() + 86400000)) days.push(d.toISOString().slice(0, 10));
  return days;
}

// drawChart draws the top failure codes per day as stacked bars.
function drawChart(st) {
  const chart = $("#chart");
  chart.replaceChildren();
  if (!st.topFailureCodes.length) { chart.append(el("p", "No rejections in this window.")); return; }
  const codes = st.topFailureCodes.slice(0, palette.length).map((c) => c.code);
  const days = chartDays(st);
  const perDay = new Map(days.map((d) => [d, 0]));
  for (const d of st.failuresByDay) if (codes.includes(d.code)) perDay.set(d.day, perDay.get(d.day) + d.count);
  const max = Math.max(1, ...perDay.values());
  const W = 640, H = 180, pad = 24, bw = Math.max(4, Math.min(40, (W - 2 * pad) / days.length - 4));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 30}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Top rejection reasons per day");
  days.forEach((day, i) => {
    const x = pad + i * ((W - 2 * pad) / days.length);
    let y = H;
    for (const d of st.failuresByDay.filter((d) => d.day === day && codes.includes(d.code))) {
      const h = (d.count / max) * (H - pad);
      y -= h;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", x); r.setAttribute("y", y); r.setAttribute("width", bw); r.setAttribute("height", h);
      r.setAttribute("fill", palette[codes.indexOf(d.code)]);
      r.setAttribute("data-code", d.code);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${day} ${d.code}: ${d.count}`;
      r.append(title);
      svg.append(r);
    }
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x); label.setAttribute("y", H + 14);
    label.textContent = day.slice(5);
    svg.append(label);
  });
  chart.append(svg);
  const legend = el("div", null, { class: "legend" });
  st.topFailureCodes.slice(0, palette.length).forEach((c, i) => {
    const s = el("span", null, { "data-code": c.code });
    s.append(el("i", null, { style: "background:" + palette[i] }), `${c.code} (${c.count})`);
    legend.append(s);
  });
  chart.append(legend);
}

async function loadSessions(more) {
  if (!more) state.cursor = "";
  const q = new URLSearchParams({ limit: "20" });
  if (state.status) q.set("status", state.status);
  if (state.cursor) q.set("cursor", state.cursor);
  const page = await api("GET", "/api/v1/sessions?" + q);
  const tbody = $("#sessions tbody");
  if (!more) tbody.replaceChildren();
  for (const s of page.sessions) {
    const a = el("a", s.sessionId, { href: "#session-" + s.sessionId, "data-session": s.sessionId });
    row(tbody, [a, `${s.subject.type} ${s.subject.id}`, el("span", s.status, { class: "status-" + s.status }), when(s.statusAt)]);
  }
  state.cursor = page.nextCursor || "";
  $("#more-sessions").hidden = !state.cursor;
  $("#sessions-filter").textContent = state.status ? `(${state.status})` : "";
}

// duration spells a span of milliseconds in its two largest units.
function duration(ms) {
  const m = Math.max(0, Math.floor(ms / 60000)), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60);
  if (d) return `${d}d ${h}h`;
  return h ? `${h}h ${m % 60}m` : `${m}m`;
}

// stalledAge says how long a stalled session has waited: in REVIEW since
// its status time, or since its invitation expired.
function stalledAge(s) {
  if (s.stalledReason === "invitation_expired") return `expired ${duration(Date.now() - Date.parse(s.expiresAt))} ago`;
  return `in ${s.status} for ${duration(Date.now() - Date.parse(s.statusAt))}`;
}

async function loadStalled(more) {
  if (!more) state.stalledCursor = "";
  const q = new URLSearchParams({ limit: "20" });
  if (state.stalledCursor) q.set("cursor", state.stalledCursor);
  const page = await api("GET", "/api/v1/sessions/stalled?" + q);
  const tbody = $("#stalled tbody");
  if (!more) tbody.replaceChildren();
  if (!more && !page.sessions.length) row(tbody, ["No stalled sessions."]);
  for (const s of page.sessions) {
    const a = el("a", s.sessionId, { href: "#session-" + s.sessionId, "data-session": s.sessionId });
    row(tbody, [a, `${s.subject.type} ${s.subject.id}`, el("span", s.status, { class: "status-" + s.status }),
      el("span", s.stalledReason, { "data-reason": s.stalledReason }), stalledAge(s)]);
  }
  state.stalledCursor = page.nextCursor || "";
  $("#more-stalled").hidden = !state.stalledCursor;
}

async function showSession(id) {
  const s = await api("GET", "/api/v1/sessions/" + encodeURIComponent(id));
  $("#session").hidden = false;
  $("#session-id").textContent = s.sessionId;
  $("#session-status").replaceChildren(el("strong", s.status, { class: "status-" + s.status }),
    ` since ${when(s.statusAt)} · ${s.subject.type} ${s.subject.id}`);
  if (s.expiresAt) $("#session-status").append(` · invitation expires ${when(s.expiresAt)}`);
  const checks = $("#checks tbody");
  checks.replaceChildren();
  for (const c of s.checks) {
    if (!c.reasons.length) row(checks, [c.type, c.state, "", ""]);
    for (const r of c.reasons) row(checks, [c.type, c.state, r.code, r.message]);
  }
  const history = $("#history tbody");
  history.replaceChildren();
  for (const h of s.history) row(history, [when(h.timestamp), h.event, h.status, h.applied ? "yes" : "no (stale)"]);
  $("#session").scrollIntoView();
}

// configuredSinks are the names a delivery can be moved to.
let configuredSinks = [];

async function loadSinks() {
  const { items } = await api("GET", "/api/v1/sinks");
  configuredSinks = items.filter((k) => k.configured).map((k) => k.name);
  const tbody = $("#sinks tbody");
  tbody.replaceChildren();
  if (!items.length) row(tbody, ["No sinks yet: kycd serve records its sinks when it starts."]);
  for (const k of items) {
    let state = k.configured ? "configured" : "not configured";
    let action = "";
    if (k.pausedAt) {
      state = `paused since ${when(k.pausedAt)}: ${k.pauseReason || "410 Gone"}`;
      action = el("button", "Resume", { "data-resume": k.name });
    }
    const tr = row(tbody, [k.name, k.type || "–", k.target || "–", (k.events || []).join(", ") || "all", state, k.pending, k.dead, action]);
    if (k.pausedAt || (!k.configured && k.pending + k.dead > 0)) tr.classList.add("attention");
  }
}

// deliveryRow lists a delivery needing attention: a retry, and for one
// whose sink is no longer configured a move to another sink or a drop.
function deliveryRow(tbody, d, retry) {
  const actions = el("span", null, { class: "actions" });
  if (retry) actions.append(el("button", "Retry", { "data-retry": d.id }));
  if (d.orphaned) {
    const pick = el("select", null, { "data-move-select": d.id, "aria-label": "Sink to move it to" });
    for (const name of configuredSinks) if (name !== d.sink) pick.append(el("option", name, { value: name }));
    if (pick.options.length) actions.append(pick, el("button", "Move", { "data-move": d.id }));
    actions.append(el("button", "Drop", { "data-drop": d.id }));
  }
  const sink = el("span", d.sink);
  if (d.orphaned) sink.append(" ", el("em", "(sink not configured)", { class: "badge" }));
  if (d.sinkPaused) sink.append(" ", el("em", "(sink paused)", { class: "badge" }));
  row(tbody, [el("span", d.id, { class: "id" }), d.notificationType, sink, d.attemptCount, d.lastError, actions]);
}

async function loadDead() {
  const { items } = await api("GET", "/api/v1/deliveries?state=dead&limit=100");
  const tbody = $("#dead tbody");
  tbody.replaceChildren();
  if (!items.length) row(tbody, ["No dead deliveries."]);
  for (const d of items) deliveryRow(tbody, d, true);
}

async function loadOrphaned() {
  const { items } = await api("GET", "/api/v1/deliveries?state=pending&orphaned=true&limit=100");
  const tbody = $("#orphaned tbody");
  tbody.replaceChildren();
  if (!items.length) row(tbody, ["No orphaned deliveries."]);
  for (const d of items) deliveryRow(tbody, d, false);
}

async function loadDeliveries() {
  await loadSinks();
  await Promise.all([loadDead(), loadOrphaned()]);
}

// deliveryAction runs an action of a delivery's row and shows its error
// next to the table it came from.
async function deliveryAction(e) {
  const b = e.target.closest("[data-retry],[data-move],[data-drop]");
  if (!b) return;
  const table = b.closest("table");
  const errorBox = $("#" + table.id + "-error");
  errorBox.textContent = "";
  b.disabled = true;
  try {
    if (b.dataset.retry) await api("POST", `/api/v1/deliveries/${b.dataset.retry}/retry`);
    if (b.dataset.drop) await api("POST", `/api/v1/deliveries/${b.dataset.drop}/drop`);
    if (b.dataset.move) {
      const pick = table.querySelector(`[data-move-select="${b.dataset.move}"]`);
      await api("POST", `/api/v1/deliveries/${b.dataset.move}/move`, { sink: pick.value });
    }
    await loadDeliveries();
  } catch (err) {
    if (err instanceof Unauthorized) showError(err); else errorBox.textContent = err.message;
    b.disabled = false;
  }
}

async function loadQuarantine() {
  const { items } = await api("GET", "/api/v1/quarantine");
  const tbody = $("#quarantine tbody");
  tbody.replaceChildren();
  if (!items.length) row(tbody, ["Nothing in quarantine."]);
  for (const q of items) {
    const fields = (q.problem.errors || []).map((e) => `${e.field || "body"} ${e.detail}`).join("; ");
    const b = el("button", "Replay", { "data-replay": q.id });
    row(tbody, [when(q.receivedAt), q.reason, q.eventId || "–", fields || q.problem.detail, b]);
  }
}

// loadWhoami shows who is logged in, and the audit trail to admins only.
async function loadWhoami() {
  const me = await api("GET", "/api/v1/whoami");
  $("#whoami").textContent = `Signed in as ${me.name} (${me.role})`;
  $("#audit").hidden = me.role !== "admin";
  if (me.role === "admin") await loadAudit(false);
}

async function loadAudit(more) {
  const q = new URLSearchParams({ limit: "50" });
  for (const f of ["actor", "action", "target"]) if ($("#audit-" + f).value.trim()) q.set(f, $("#audit-" + f).value.trim());
  if (more && state.auditCursor) q.set("cursor", state.auditCursor);
  const page = await api("GET", "/api/v1/audit?" + q);
  const tbody = $("#audit-trail tbody");
  if (!more) tbody.replaceChildren();
  if (!more && !page.items.length) row(tbody, ["Nothing recorded."]);
  for (const a of page.items) row(tbody, [when(a.at), a.actor, a.action, a.target, a.remote || "CLI", a.outcome, a.detail || ""]);
  state.auditCursor = page.nextCursor || "";
  $("#more-audit").hidden = !page.nextCursor;
}

async function loadAll() {
  $("#error").textContent = "";
  await Promise.all([loadWhoami(), loadStats(), loadStalled(false), loadSessions(false), loadDeliveries(), loadQuarantine()]);
}

function logout(message) {
  sessionStorage.removeItem(tokenKey);
  $("#whoami").textContent = "";
  $("#audit").hidden = true;
  $("#app").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

function start() {
  $("#app").hidden = false;
  $("#login").hidden = true;
  $("#logout").hidden = false;
  loadAll().catch(showError);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(tokenKey, $("#token").value.trim());
    $("#token").value = "";
    start();
  });
  $("#logout").addEventListener("click", () => logout());
  $("#window").addEventListener("change", () => loadStats().catch(showError));
  $("#more-sessions").addEventListener("click", () => loadSessions(true).catch(showError));
  $("#statuses").addEventListener("click", (e) => {
    const tile = e.target.closest("[data-status]");
    if (!tile) return;
    state.status = tile.dataset.status;
    for (const t of document.querySelectorAll("#statuses .tile")) t.setAttribute("aria-pressed", String(t === tile));
    loadSessions(false).catch(showError);
  });
  $("#sessions").addEventListener("click", (e) => {
    const a = e.target.closest("[data-session]");
    if (!a) return;
    e.preventDefault();
    showSession(a.dataset.session).catch(showError);
  });
  $("#more-stalled").addEventListener("click", () => loadStalled(true).catch(showError));
  $("#more-audit").addEventListener("click", () => loadAudit(true).catch(showError));
  $("#audit-filter").addEventListener("submit", (e) => { e.preventDefault(); loadAudit(false).catch(showError); });
  $("#stalled").addEventListener("click", (e) => {
    const a = e.target.closest("[data-session]");
    if (!a) return;
    e.preventDefault();
    showSession(a.dataset.session).catch(showError);
  });
  $("#dead").addEventListener("click", deliveryAction);
  $("#orphaned").addEventListener("click", deliveryAction);
  $("#sinks").addEventListener("click", async (e) => {
    const b = e.target.closest("[data-resume]");
    if (!b) return;
    $("#sinks-error").textContent = "";
    b.disabled = true;
    try {
      await api("POST", `/api/v1/sinks/${encodeURIComponent(b.dataset.resume)}/resume`);
      await loadDeliveries();
    } catch (err) {
      if (err instanceof Unauthorized) showError(err); else $("#sinks-error").textContent = err.message;
      b.disabled = false;
    }
  });
  $("#quarantine").addEventListener("click", async (e) => {
    const b = e.target.closest("[data-replay]");
    if (!b) return;
    b.disabled = true;
    try { await api("POST", `/api/v1/quarantine/${b.dataset.replay}/replay`); await loadAll(); } catch (err) { showError(err); b.disabled = false; }
  });
  if (sessionStorage.getItem(tokenKey)) start(); else logout();
});
