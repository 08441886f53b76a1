// rampart dashboard: live charts and tables from the stats stream.
// Panels are a list: a component adds its panel by pushing to PANELS.
"use strict";

const HISTORY = 900; // seconds kept (what /api/stats?history=1 holds)
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#a5d6ff"];
const ERROR_RED = "#f85149";
// Servers' lines: no red (errors are red), a colour per server kept as
// servers come and go (picked from its name).
const SERVER_COLORS = ["#58a6ff", "#3fb950", "#d29922", "#bc8cff", "#39c5cf", "#a5d6ff", "#e3b341", "#7ee787", "#d2a8ff", "#79c0ff"];
function serverColor(key) {
  let h = 0;
  for (const c of key) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return SERVER_COLORS[h % SERVER_COLORS.length];
}
const history = []; // [{t, stats}]
const fleetHistory = new Map(); // peer name -> [[t, req/s or null]]
let range = 300; // seconds the charts show (1, 5 or 15 minutes)
let latest = null; // the newest stats document
let changes = []; // [{t, kind, target, detail}]
let config = null; // the last /api/config document
const weightDraft = new Map(); // "pool/server" -> a weight being typed

// === The admin token: kept for this tab only, never in the page's URL ===

const TOKEN_KEY = "rampart-admin-token";
function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function authHeaders() { const t = token(); return t ? { Authorization: "Bearer " + t } : {}; }
// A token given the old way (?token=) moves out of the URL at once.
(() => {
  const q = new URLSearchParams(location.search);
  if (q.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, q.get("token"));
    window.history.replaceState(null, "", location.pathname);
  }
})();

function api(path, init) {
  return fetch(path, Object.assign({ cache: "no-store" }, init, { headers: Object.assign({}, (init || {}).headers, authHeaders()) }));
}

function askToken(why) {
  const form = document.getElementById("token-form");
  form.hidden = false;
  document.getElementById("token-why").textContent = why;
}

// === Formatting ===

function rememberFleet(stats) {
  if (!stats.fleet) return;
  const t = stats.time_unix_ms / 1000;
  for (const i of stats.fleet.instances.slice(1)) {
    const points = fleetHistory.get(i.name) || [];
    points.push([t, i.up ? i.qps["1s"] : null]);
    while (points.length > HISTORY) points.shift();
    fleetHistory.set(i.name, points);
  }
}

const fmt = {
  n: (v) => (v == null ? "–" : Number(v).toLocaleString(undefined, { maximumFractionDigits: 1 })),
  ms: (v) => (v == null ? "–" : v.toFixed(v < 10 ? 2 : 1) + " ms"),
  pct: (v) => (v == null ? "–" : (v * 100).toFixed(2) + " %"),
  bytes: (v) => {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + u[i];
  },
  days: (s) => (s / 86400).toFixed(1) + " d",
  date: (unix) => new Date(unix * 1000).toISOString().slice(0, 10),
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function table(id, head, rows) {
  document.getElementById(id).replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))), ...rows);
}

function servers(stats) {
  const out = [];
  for (const p of stats.pools) for (const s of p.servers) out.push({ pool: p.name, ...s });
  return out;
}

/* One state per server, as an operator reads it: an operator's drain
   first, then the health verdict, then a passive ejection. */
function stateOf(s) {
  if (s.state === "drained" || s.state === "draining" || s.state === "removing") return s.state;
  if (s.health === "down") return "down";
  if (s.ejected) return "ejected";
  if (s.health === "unknown") return "unknown";
  if (s.slow_start != null) return "slow-start";
  return "up";
}

/* "5 m 12 s" */
function ago(unixSeconds) {
  if (unixSeconds == null) return "";
  let left = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  const parts = [];
  for (const [unit, n] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (left >= n) { parts.push(Math.floor(left / n) + " " + unit); left %= n; }
  }
  if (parts.length < 2) parts.push(left + " s");
  return parts.slice(0, 2).join(" ");
}

/* What the checks say of a server: why it is down, or the last check. */
function checkText(s) {
  const st = stateOf(s);
  const since = s.since != null ? " for " + ago(s.since) : "";
  if (s.reason && (st === "down" || st === "ejected")) return st + since + ": " + s.reason;
  if (s.last_check) return s.last_check.detail + " in " + fmt.ms(s.last_check.took_ms) + (since ? " · " + s.health + since : "");
  return since ? s.health + since : "";
}

/* The last transitions as small coloured marks, oldest first. */
function strip(s) {
  return el("span", { class: "strip" }, ...(s.transitions || []).slice(-10).map((t) =>
    el("i", { class: "t-" + t.to, title: new Date(t.at * 1000).toLocaleTimeString() + " → " + t.to + (t.reason ? ": " + t.reason : "") })));
}

/* How rampart reaches a server, its certificate, and its last TLS failure. */
function link(s) {
  if (!s.tls) return "plain";
  let text = s.tls;
  if (s.cert_expires) text += " · cert " + fmt.date(s.cert_expires) + " (" + fmt.days(s.cert_expires - Date.now() / 1000) + ")";
  if (s.tls_failures) text += " · " + s.tls_failures + " TLS failures" + (s.last_tls_failure ? ": " + s.last_tls_failure.reason : "");
  return text;
}

const classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
function errShare(e) {
  const all = e.requests || 0;
  return all ? (e.by_class["5xx"] || 0) / all : null;
}

/* Servers whose p99 is far above their pool's peers. */
function outliers(stats) {
  const out = new Set();
  for (const p of stats.pools) {
    const p99 = p.servers.map((s) => s.latency_ms.p99).filter((v) => v != null).sort((a, b) => a - b);
    if (p99.length < 2) continue;
    const median = p99[Math.floor((p99.length - 1) / 2)];
    for (const s of p.servers) {
      const v = s.latency_ms.p99;
      if (v != null && v > 5 && v > 4 * Math.max(median, 0.25)) out.add(p.name + "/" + s.name);
    }
  }
  return out;
}

// === Charts ===

function series(pick) { return history.map((h) => [h.t, pick(h.stats)]); }

function chartPanel(id, title, seriesOf, unit, opts) {
  let drawn = null;
  return Object.assign({
    id, title,
    build(root) {
      const wrap = el("div", { class: "chart" }, el("canvas", { id: id + "-canvas" }), el("div", { class: "tip", id: id + "-tip", hidden: "" }));
      root.append(wrap, el("div", { class: "legend", id: id + "-legend" }));
      const canvas = wrap.querySelector("canvas");
      Chart.attachHover(canvas, wrap.querySelector(".tip"), () => drawn, (v) => (v == null ? "–" : fmt.n(v) + " " + unit));
    },
    update() {
      const s = seriesOf();
      const now = latest ? latest.time_unix_ms / 1000 : Date.now() / 1000;
      drawn = Chart.draw(document.getElementById(id + "-canvas"), { series: s, unit, span: range, now, changes });
      document.getElementById(id + "-legend").replaceChildren(...s.map((x) => el("span", {}, el("i", { style: "background:" + x.color }), x.name)));
    },
    // What was drawn last: the scale, tick labels and marks (tests read it).
    drawn() { return drawn; },
  }, opts || {});
}

/* One small chart per server, on one scale: no line hides another. */
const serverMultiples = {
  id: "server-qps", title: "Requests per second by server", wide: true,
  build(root) { root.append(el("div", { class: "multiples", id: "server-qps-grid" })); },
  update(stats) {
    const grid = document.getElementById("server-qps-grid");
    const keys = servers(stats).map((s) => s.pool + "/" + s.name);
    const pts = new Map(keys.map((k) => [k, []]));
    for (const h of history) for (const s of servers(h.stats)) {
      const p = pts.get(s.pool + "/" + s.name);
      if (p) p.push([h.t, s.qps["1s"]]);
    }
    let max = 0;
    const t0 = stats.time_unix_ms / 1000 - range;
    for (const p of pts.values()) for (const [t, v] of p) if (t >= t0 && v > max) max = v;
    const top = max > 0 ? Math.ceil((max * 1.05) / Chart.niceStep(max * 1.1, 2)) * Chart.niceStep(max * 1.1, 2) : 1;
    const have = new Set([...grid.children].map((c) => c.dataset.key));
    if (keys.length !== have.size || keys.some((k) => !have.has(k)))
      grid.replaceChildren(...keys.map((k) => el("div", { class: "multiple", "data-key": k }, el("div", { class: "mtitle" }, el("i", { style: "background:" + serverColor(k) }), k), el("canvas", {}))));
    for (const cell of grid.children) {
      const k = cell.dataset.key;
      Chart.draw(cell.querySelector("canvas"), { series: [{ name: k, color: serverColor(k), points: pts.get(k) || [] }], unit: "/s", span: range, now: stats.time_unix_ms / 1000, changes: changes.filter((c) => c.target === k), max: top });
    }
  },
};

// === Controls ===

async function control(method, path, body, what) {
  const note = document.getElementById("control-note");
  try {
    const r = await api(path, { method, headers: { "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const v = await r.json().catch(() => ({}));
    if (r.ok) { note.textContent = what + ": done"; note.className = "note ok"; }
    else {
      note.textContent = what + " refused (" + r.status + "): " + (v.error || r.statusText);
      note.className = "note bad";
      if (r.status === 401) askToken("the admin API needs its token for changes");
    }
  } catch (e) {
    note.textContent = what + " failed: " + e; note.className = "note bad";
  }
}

function actions(s) {
  const base = "/api/pools/" + encodeURIComponent(s.pool) + "/servers/" + encodeURIComponent(s.name);
  const who = s.pool + "/" + s.name;
  if (s.state === "removing") return el("span", { class: "muted small" }, "being removed");
  const drained = s.state !== "active";
  const btn = drained
    ? el("button", { class: "act undrain", onclick: () => control("POST", base + "/undrain", null, "undrain " + who) }, "undrain")
    : el("button", { class: "act drain", onclick: () => control("POST", base + "/drain", null, "drain " + who) }, "drain");
  // A weight being typed survives the table's redraw each second.
  const weight = el("input", { class: "weight", type: "number", min: "1", max: "10000", value: weightDraft.get(who) ?? s.weight, "aria-label": "weight of " + who, "data-who": who,
    oninput: (e) => weightDraft.set(who, e.target.value) });
  const set = el("button", { class: "act set-weight", onclick: () => { weightDraft.delete(who); control("PUT", base + "/weight", { weight: Number(weight.value) }, "weight " + who); } }, "set");
  return el("span", { class: "actions" }, btn, weight, set);
}

// === Panels ===

const PANELS = [
  chartPanel("qps", "Requests per second", () => [
    { name: "all", color: COLORS[0], points: series((s) => s.totals.qps["1s"]) },
    { name: "5xx", color: ERROR_RED, points: series((s) => (s.totals.qps_5xx == null ? null : s.totals.qps_5xx)) },
  ], "req/s"),
  serverMultiples,
  chartPanel("latency", "Latency (10 s window)", () => [
    { name: "p50", color: COLORS[1], points: series((s) => s.totals.latency_ms.p50) },
    { name: "p90", color: COLORS[5], points: series((s) => s.totals.latency_ms.p90) },
    { name: "p99", color: COLORS[2], points: series((s) => s.totals.latency_ms.p99) },
    { name: "p99.9", color: COLORS[4], points: series((s) => s.totals.latency_ms.p999) },
  ], "ms"),
  chartPanel("server-latency", "p99 latency by server", () => {
    const last = history.length ? history[history.length - 1].stats : null;
    return (last ? servers(last) : []).map((s) => {
      const key = s.pool + "/" + s.name;
      return { name: key, color: serverColor(key), points: history.map((h) => {
        const x = servers(h.stats).find((y) => y.pool + "/" + y.name === key);
        return [h.t, x && x.latency_ms ? x.latency_ms.p99 : null];
      }) };
    });
  }, "ms"),
  chartPanel("errors", "5xx share (10 s window)", () => [
    { name: "5xx / all", color: ERROR_RED, points: series((s) => (s.totals.error_ratio_10s || 0) * 100) },
  ], "%"),
  chartPanel("fleet-qps", "Fleet: requests per second by instance", () => [
    { name: "this instance", color: COLORS[0], points: series((s) => s.totals.qps["1s"]) },
    ...[...fleetHistory.entries()].map(([name, points], i) => ({ name, color: SERVER_COLORS[(i + 1) % SERVER_COLORS.length], points })),
  ], "req/s", { wide: true, fleet: true }),
  {
    id: "fleet", title: "Fleet", wide: true, fleet: true,
    build(root) { root.append(el("table", { id: "fleet-table" })); },
    update(stats) {
      const f = stats.fleet;
      if (!f) return;
      const head = el("tr", {}, ...["instance", "status", "req/s", "5xx (10 s)", "p99", "servers up", "requests", "revision"].map((h) => el("th", {}, h)));
      const row = (i, total) => el("tr", { "data-instance": i.name || "total", class: total ? "total" : "" },
        el("td", {}, total ? "fleet total" : i.name + (i.address ? " (" + i.address + ")" : "")),
        el("td", {}, total ? f.totals.instances_up + " / " + f.totals.instances + " up"
          : el("span", { class: "pill " + (i.up ? "up" : "down") }, i.up ? "up" : "down: " + i.error)),
        el("td", { class: "num" }, fmt.n(i.qps ? i.qps["10s"] : null)), el("td", { class: "num" }, fmt.pct(i.error_ratio_10s)),
        el("td", { class: "num" }, total ? "" : fmt.ms(i.latency_ms ? i.latency_ms.p99 : null)),
        el("td", { class: "num" }, i.servers == null ? "–" : i.servers_up + " / " + i.servers), el("td", { class: "num" }, fmt.n(i.requests)),
        el("td", { class: "num revision" }, total || i.revision == null ? "" : i.revision));
      document.getElementById("fleet-table").replaceChildren(head, ...f.instances.map((i) => row(i, false)), row(f.totals, true));
    },
  },
  {
    id: "servers", title: "Pools and servers", wide: true,
    build(root) { root.append(el("div", { id: "control-note", class: "note" }), el("div", { class: "scroll" }, el("table", { id: "servers-table" }))); },
    update(stats) {
      // The field the operator is typing in keeps its focus across the redraw.
      const active = document.activeElement;
      const typing = active && active.classList && active.classList.contains("weight") ? active.dataset.who : null;
      const odd = outliers(stats);
      const head = el("tr", {}, ...["server", "state", "check", "weight", "in flight", "req/s", "p50", "p99", "TTFB p99", ...classes, "5xx %", "conns", "link", ""].map((h) => el("th", {}, h)));
      const rows = [];
      for (const p of stats.pools) {
        rows.push(el("tr", { class: "pool", "data-pool": p.name }, el("td", { colspan: 20 },
          el("b", {}, p.name), " · " + (p.algorithm || "") + (p.check ? " · check: " + p.check.words : " · no active check") +
          " · retries " + fmt.n(p.retries) + " · ejections " + fmt.n(p.ejections) + " · overloaded (503) " + fmt.n(p.overloaded))));
        for (const s0 of p.servers) {
          const s = { pool: p.name, ...s0 };
          const st = stateOf(s);
          const slow = odd.has(p.name + "/" + s.name);
          rows.push(el("tr", { "data-server": s.name, "data-state": st, class: "row-" + st },
            el("td", {}, el("i", { class: "swatch", style: "background:" + serverColor(p.name + "/" + s.name) }), s.name, el("div", { class: "muted small" }, s.address)),
            el("td", {}, el("span", { class: "pill " + st }, st === "slow-start" ? "slow start " + Math.round(s.slow_start * 100) + " %" : st), strip(s)),
            el("td", { class: "check" }, checkText(s)),
            el("td", { class: "num" }, s.weight), el("td", { class: "num" }, s.in_flight),
            el("td", { class: "num qps" }, fmt.n(s.qps["10s"])), el("td", { class: "num" }, fmt.ms(s.latency_ms.p50)),
            el("td", { class: "num" + (slow ? " outlier" : ""), title: slow ? "far above the pool's other servers" : "" }, fmt.ms(s.latency_ms.p99), slow ? el("span", { class: "pill ejected" }, "outlier") : null),
            el("td", { class: "num" }, fmt.ms(s.header_latency_ms ? s.header_latency_ms.p99 : null)),
            ...classes.map((c) => el("td", { class: "num" + (c === "5xx" && s.by_class[c] ? " bad" : "") }, fmt.n(s.by_class[c]))),
            el("td", { class: "num" }, fmt.pct(errShare(s))),
            el("td", { class: "num", title: s.connections ? s.connections.idle + " idle, reuse " + fmt.pct(s.connections.reuse) : "" }, s.connections ? s.connections.open : "–"),
            el("td", { class: "link small" }, link(s)),
            el("td", {}, actions(s))));
        }
      }
      document.getElementById("servers-table").replaceChildren(head, ...rows);
      if (typing) {
        const again = [...document.querySelectorAll("#servers-table input.weight")].find((i) => i.dataset.who === typing);
        if (again) again.focus();
      }
    },
  },
  {
    id: "routes", title: "Routes", wide: true,
    build(root) { root.append(el("div", { class: "scroll" }, el("table", { id: "routes-table" }))); },
    update(stats) {
      table("routes-table", ["route", "req/s", ...classes, "5xx %", "p50", "p99"], (stats.routes || []).map((r) => el("tr", { "data-route": r.name },
        el("td", {}, r.name), el("td", { class: "num" }, fmt.n(r.qps["10s"])),
        ...classes.map((c) => el("td", { class: "num" }, fmt.n(r.by_class[c]))),
        el("td", { class: "num" }, fmt.pct(errShare(r))), el("td", { class: "num" }, fmt.ms(r.latency_ms.p50)), el("td", { class: "num" }, fmt.ms(r.latency_ms.p99)))));
    },
  },
  {
    id: "failures", title: "Recent failing requests", wide: true,
    build(root) { root.append(el("div", { class: "scroll" }, el("table", { id: "failures-table" }))); },
    update(stats) {
      const rows = (stats.failures || []).map((f) => el("tr", { "data-request-id": f.request_id },
        el("td", { class: "muted" }, new Date(f.time_unix_ms).toLocaleTimeString()), el("td", {}, f.client),
        el("td", {}, f.method + " " + f.host + f.path), el("td", {}, f.server || "–"),
        el("td", { class: "num bad" }, f.status), el("td", { class: "num" }, fmt.ms(f.duration_ms)),
        el("td", { class: "muted small" }, f.request_id + (f.error ? " · " + f.error : ""))));
      if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "none since start")));
      table("failures-table", ["time", "client", "request", "server", "status", "took", "request id"], rows);
    },
  },
  {
    id: "listeners", title: "Listeners", wide: false,
    build(root) { root.append(el("div", { class: "scroll" }, el("table", { id: "listeners-table" }))); },
    update(stats) {
      table("listeners-table", ["listener", "conns", "req/s", "in", "out", "HTTP/1.1 / HTTP/2", "TLS 1.3 / 1.2", "TLS failures"], stats.listeners.map((l) => el("tr", { "data-listener": l.name },
        el("td", {}, l.name), el("td", { class: "num" }, l.connections),
        el("td", { class: "num" }, fmt.n(l.qps["10s"])), el("td", { class: "num" }, fmt.bytes(l.bytes_in)),
        el("td", { class: "num" }, fmt.bytes(l.bytes_out)),
        el("td", { class: "num protocols" }, l.protocols ? fmt.n(l.protocols["HTTP/1.1"]) + " / " + fmt.n(l.protocols["HTTP/2"]) : "–"),
        el("td", { class: "num" }, l.tls.handshakes_tls13 + " / " + l.tls.handshakes_tls12), el("td", { class: "num" }, l.tls.failures))));
    },
  },
  {
    id: "tcp", title: "TCP and database endpoints", wide: true,
    build(root) { root.append(el("div", { id: "tcp-alerts" }), el("table", { id: "tcp-table" }), el("table", { id: "db-table" })); },
    update(stats) {
      const tcp = stats.listeners.filter((l) => l.tcp);
      document.getElementById("panel-tcp").hidden = tcp.length === 0;
      const alerts = tcp.filter((l) => l.endpoint.refusing).map((l) =>
        el("div", { class: "alert", "data-listener": l.name }, l.endpoint.role + " endpoint " + l.name + " refuses connections: " + l.endpoint.refusing));
      document.getElementById("tcp-alerts").replaceChildren(...alerts);
      table("tcp-table", ["listener", "pool", "role", "using", "active", "sessions", "up", "down", "connect failures", "refused"], tcp.map((l) => el("tr", { "data-listener": l.name }, el("td", {}, l.name), el("td", {}, l.endpoint.pool),
        el("td", {}, l.endpoint.role || "tcp"),
        el("td", { class: "using" }, l.endpoint.refusing ? el("span", { class: "pill down" }, "refusing") : (l.endpoint.using || []).join(", ")),
        el("td", { class: "num" }, l.tcp.active), el("td", { class: "num" }, fmt.n(l.tcp.sessions)),
        el("td", { class: "num" }, fmt.bytes(l.tcp.bytes_up)), el("td", { class: "num" }, fmt.bytes(l.tcp.bytes_down)),
        el("td", { class: "num" }, fmt.n(l.tcp.connect_failures)), el("td", { class: "num" }, fmt.n(l.tcp.refused)))));
      table("db-table", ["pool", "server", "role", "lag", "why", "active", "sessions"], servers(stats).filter((s) => s.database || s.tcp).map((s) => el("tr", { "data-server": s.name },
        el("td", {}, s.pool), el("td", {}, s.name),
        el("td", { class: "role" }, s.database ? el("span", { class: "pill " + (s.database.role === "down" ? "down" : "up") }, s.database.role) : "-"),
        el("td", { class: "num" }, s.database && s.database.lag_seconds != null ? s.database.lag_seconds + " s" : "-"),
        el("td", { class: "muted" }, s.database ? s.database.reason : ""),
        el("td", { class: "num" }, s.tcp ? s.tcp.active : "-"), el("td", { class: "num" }, s.tcp ? fmt.n(s.tcp.sessions) : "-"))));
    },
  },
  {
    id: "firewall", title: "Firewall", wide: false,
    build(root) { root.append(el("div", { class: "scroll" }, el("table", { id: "firewall-table" }))); },
    update(stats) {
      const fw = stats.firewall || { rules: [], connections_refused: {}, bad_paths: 0 };
      const rows = fw.rules.map((r) => el("tr", {}, el("td", {}, r.name), el("td", {}, r.action), el("td", { class: "num" }, fmt.n(r.hits))));
      rows.push(el("tr", {}, el("td", {}, "path normalisation"), el("td", {}, "reject"), el("td", { class: "num" }, fmt.n(fw.bad_paths))));
      for (const [why, n] of Object.entries(fw.refusals || {}))
        if (n) rows.push(el("tr", { "data-refusal": why }, el("td", {}, "refused: " + why), el("td", {}, "refuse"), el("td", { class: "num" }, fmt.n(n))));
      for (const [l, n] of Object.entries(fw.connections_refused))
        rows.push(el("tr", {}, el("td", {}, "refused at accept (" + l + ")"), el("td", {}, "close"), el("td", { class: "num" }, fmt.n(n))));
      for (const b of fw.bans || [])
        rows.push(el("tr", {}, el("td", {}, "banned " + b.address), el("td", { class: "muted" }, b.reason), el("td", { class: "num" }, b.remaining_seconds + " s")));
      for (const c of fw.top_blocked_clients || [])
        rows.push(el("tr", {}, el("td", {}, "top blocked " + c.address), el("td", {}, ""), el("td", { class: "num" }, fmt.n(c.blocked))));
      for (const e of (fw.recent_events || []).slice(0, 8))
        rows.push(el("tr", {}, el("td", { class: "muted" }, new Date(e.time_unix_ms).toLocaleTimeString() + " " + e.client), el("td", {}, e.rule + " (" + e.action + ")"), el("td", { class: "muted" }, e.request)));
      table("firewall-table", ["rule", "action", "matches"], rows);
    },
  },
  {
    id: "certificates", title: "Certificates", wide: false,
    build(root) { root.append(el("div", { class: "scroll" }, el("table", { id: "certificates-table" }))); },
    update(stats) {
      const rows = [];
      for (const l of stats.listeners) for (const c of l.certificates) {
        const days = c.expires_in_seconds / 86400;
        const cls = days < 7 ? "down" : days < 30 ? "unknown" : "up";
        rows.push(el("tr", { "data-certificate": c.name },
          el("td", {}, l.name), el("td", {}, c.name, el("div", { class: "muted small" }, (c.sans || []).join(", "))),
          el("td", { class: "small" }, c.issuer || "–"),
          el("td", { class: "num" }, el("span", { class: "pill expiry " + cls }, fmt.date(c.not_after) + " · " + fmt.days(c.expires_in_seconds)))));
      }
      for (const s of servers(stats).filter((x) => x.tls_failures))
        rows.push(el("tr", { class: "backend-tls" }, el("td", {}, "to " + s.pool + "/" + s.name), el("td", { colspan: 2, class: "small" }, (s.last_tls_failure || {}).reason || ""),
          el("td", { class: "num" }, el("span", { class: "pill down" }, s.tls_failures + " failed"))));
      table("certificates-table", ["listener", "certificate", "issuer", "expires"], rows);
    },
  },
  {
    id: "changes", title: "Changes", wide: false,
    build(root) { root.append(el("div", { class: "scroll" }, el("table", { id: "changes-table" }))); },
    update() {
      const rows = changes.slice(-12).reverse().map((c) => el("tr", { "data-kind": c.kind },
        el("td", { class: "muted" }, new Date(c.t * 1000).toLocaleTimeString()), el("td", {}, c.kind), el("td", {}, c.target), el("td", { class: "small" }, c.detail)));
      if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "none since start")));
      table("changes-table", ["time", "change", "of", ""], rows);
    },
  },
  {
    id: "config", title: "Configuration", wide: true,
    build(root) { root.append(el("div", { id: "config-view", class: "scroll" }, "loading…")); },
    update() {},
  },
];

/* Version, uptime and the last reload, in the header. */
function about() {
  if (!config) return;
  const rel = config.last_reload;
  const f = latest && latest.fleet_sync;
  document.getElementById("about").textContent = "v" + config.version + " · up " + ago(config.started_unix) +
    (rel ? " · last reload " + new Date(rel.at_unix_ms).toLocaleTimeString() + (rel.ok ? " ok" : " refused") : "") +
    (f ? " · fleet " + f.node + " at revision " + f.revision + (f.etcd_up ? "" : " (etcd down)") : "");
  const line = document.getElementById("config-about");
  if (line) line.textContent = (config.file || "no file") + " · rampart " + config.version + " · up " + ago(config.started_unix);
}

/* The running configuration, read once and again after each reload. */
async function loadConfig() {
  const r = await api("/api/config");
  if (!r.ok) return;
  const c = await r.json();
  config = c;
  const rel = c.last_reload;
  const box = document.getElementById("config-view");
  const sect = (title, head, rows) => [el("h3", {}, title), el("table", { class: "config-" + title.toLowerCase() }, el("tr", {}, ...head.map((h) => el("th", {}, h))), ...rows)];
  box.replaceChildren(
    el("div", { class: "muted small", id: "config-about" }, (c.file || "no file") + " · rampart " + c.version + " · up " + ago(c.started_unix)),
    rel ? el("div", { class: rel.ok ? "note ok" : "note bad", id: "config-reload" }, "last reload " + new Date(rel.at_unix_ms).toLocaleString() + ": " + (rel.ok ? "applied, " : "refused, the running config stays: ") + rel.detail) : el("div", { class: "muted small" }, "not reloaded since start"),
    ...sect("Listeners", ["name", "address", "protocol", "TLS"], c.listeners.map((l) => el("tr", {}, el("td", {}, l.name), el("td", {}, l.address), el("td", {}, l.protocol + (l.pool ? " → " + l.pool : "")),
      el("td", { class: "small" }, l.tls ? l.tls.versions.join(", ") + (l.tls.http2 ? ", h2" : "") + " · certificates: " + l.tls.certificates + (l.tls.client_certificates ? " · client certificates" : "") + (l.tls.hsts ? " · HSTS " + l.tls.hsts : "") : "–")))),
    ...sect("Routes", ["host", "path", "pool", "listeners"], c.routes.map((r) => el("tr", {}, el("td", {}, r.host), el("td", {}, r.path_prefix || "/"), el("td", {}, r.pool), el("td", {}, r.listeners ? r.listeners.join(", ") : "all")))),
    ...sect("Rules", ["name", "when", "action"], c.rules.map((r) => el("tr", {}, el("td", {}, r.name), el("td", { class: "small" }, r.when.join(" and ") || "always"), el("td", {}, r.action)))),
    ...sect("Pools", ["name", "algorithm", "protocol", "servers", "check"], c.pools.map((p) => el("tr", {}, el("td", {}, p.name), el("td", {}, p.algorithm), el("td", {}, p.protocol + (p.tls ? " · " + p.tls : "")), el("td", { class: "num" }, p.servers), el("td", { class: "small" }, p.check || "none")))),
  );
  about();
}

function buildPanels() {
  const main = document.getElementById("panels");
  for (const p of PANELS) {
    const root = el("div", { class: "panel" + (p.wide ? " wide" : ""), id: "panel-" + p.id }, el("h2", {}, p.title));
    p.build(root);
    main.append(root);
  }
  for (const b of document.querySelectorAll("#range button")) {
    b.addEventListener("click", () => {
      range = Number(b.dataset.seconds);
      for (const tip of document.querySelectorAll(".tip")) tip.hidden = true;
      for (const x of document.querySelectorAll("#range button")) x.classList.toggle("on", x === b);
      if (latest) redraw(latest);
    });
  }
  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value);
    document.getElementById("token-form").hidden = true;
    if (!latest) start();
  });
}

function summary(stats) {
  const t = stats.totals;
  // Up: what would be picked for a new request now (not drained, down or ejected).
  const up = servers(stats).filter((s) => s.available).length;
  const items = [
    ["req/s (10 s)", fmt.n(t.qps["10s"])], ["requests", fmt.n(t.requests)], ["p50", fmt.ms(t.latency_ms.p50)],
    ["p99", fmt.ms(t.latency_ms.p99)], ["5xx (10 s)", fmt.pct(t.error_ratio_10s)], ["servers up", up + " / " + servers(stats).length],
  ];
  document.getElementById("summary").replaceChildren(...items.map(([k, v]) => el("div", { class: "metric" }, el("div", { class: "v", id: "summary-" + k.split(" ")[0] }, v), el("div", { class: "k" }, k))));
}

function redraw(stats) {
  summary(stats);
  for (const p of PANELS) {
    if (p.fleet) document.getElementById("panel-" + p.id).hidden = !stats.fleet;
    p.update(stats);
  }
}

function takeChanges(stats) {
  if (!stats.changes) return;
  const before = changes.length ? changes[changes.length - 1].t : 0;
  changes = stats.changes.map((c) => ({ t: c.time_unix_ms / 1000, kind: c.kind, target: c.target, detail: c.detail }));
  const last = changes.length ? changes[changes.length - 1] : null;
  if (last && last.t > before && last.kind.startsWith("reload")) loadConfig();
}

function render(stats) {
  history.push({ t: stats.time_unix_ms / 1000, stats });
  while (history.length > HISTORY) history.shift();
  latest = stats;
  rememberFleet(stats);
  takeChanges(stats);
  about();
  redraw(stats);
}

// Fills the charts with the last 15 minutes rampart kept, then goes live.
async function start() {
  try {
    const r = await api("/api/stats?history=1");
    if (r.status === 401) { askToken("the admin API asks for its token"); return; }
    if (r.ok) {
      const doc = await r.json();
      for (const h of doc.history || []) history.push({ t: h.time_unix_ms / 1000, stats: h });
      for (const peer of doc.fleet_history || [])
        fleetHistory.set(peer.name, peer.points.map(([t, q]) => [t / 1000, q]));
      while (history.length > HISTORY) history.shift();
      delete doc.history;
      delete doc.fleet_history;
      if (doc.plan) showPlan();
      delete doc.plan;
      render(doc);
    }
  } catch (e) {
    console.warn("no history: " + e);
  }
  loadConfig().catch((e) => console.warn("no config: " + e));
  connect();
}

/* The stats stream, read with fetch so that the token goes in a header. */
function connect() {
  const status = document.getElementById("status");
  let last = Date.now();
  let shutdown = false;
  const show = (text, cls) => { status.textContent = text; status.className = "status " + cls; };
  const onEvent = (name, data) => {
    if (name === "stats") { last = Date.now(); shutdown = false; show("live", "live"); render(JSON.parse(data)); }
    if (name === "shutdown") { shutdown = true; show("shutting down", "lost"); }
  };
  async function read() {
    try {
      const r = await api("/api/stats/stream");
      if (r.status === 401) { askToken("the admin API asks for its token"); return; }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          onEvent(name, data);
        }
      }
    } catch (e) {
      // The connection went; said below, tried again.
    }
    show((shutdown ? "shut down" : "connection lost") + ", retrying…", "lost");
    setTimeout(read, 2000);
  }
  read();
  // Events come once a second: past 3 s without one, say so.
  setInterval(() => {
    const quiet = Math.round((Date.now() - last) / 1000);
    if (quiet >= 3) show((shutdown ? "shutting down · " : "") + "no data for " + quiet + " s", "lost");
  }, 1000);
}

// The infrastructure diagram (`rampart plan`), when the config has a
// [topology]: drawn by rampart as SVG, shown as an image (no script runs).
async function showPlan() {
  try {
    const r = await api("/api/plan.svg");
    if (!r.ok) return;
    const img = el("img", { id: "plan-diagram", alt: "hosts by tier and the traffic allowed between them" });
    img.src = URL.createObjectURL(await r.blob());
    const panel = el("div", { class: "panel wide", id: "panel-plan" }, el("h2", {}, "Infrastructure"), el("div", { class: "plan" }, img));
    document.getElementById("panels").append(panel);
  } catch (e) {
    console.warn("no plan: " + e);
  }
}

buildPanels();
start();
