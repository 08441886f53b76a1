// rampart dashboard: live charts and tables from /api/stats/stream.
// Panels are a list: a component adds its panel by pushing to PANELS.
"use strict";

const HISTORY = 900; // seconds kept in the charts (what /api/stats?history=1 holds)
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#a5d6ff"];
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

// Each peer's rate at this second (null while it does not answer).
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

/* How rampart reaches a server: plaintext, TLS or mTLS, and until when the
   certificate the server showed is valid. */
function link(s) {
  if (!s.tls) return "plain";
  if (!s.cert_expires) return s.tls;
  const left = s.cert_expires - Date.now() / 1000;
  return s.tls + " · cert " + new Date(s.cert_expires * 1000).toISOString().slice(0, 10) + " (" + fmt.days(left) + ")";
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
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function servers(stats) {
  const out = [];
  for (const p of stats.pools) for (const s of p.servers) out.push({ pool: p.name, ...s });
  return out;
}

/* One state per server, as an operator reads it: an operator's drain
   first, then the health verdict, then a passive ejection. */
function stateOf(s) {
  if (s.state === "drained" || s.state === "draining") return s.state;
  if (s.health === "down") return "down";
  if (s.ejected) return "ejected";
  if (s.health === "unknown") return "unknown";
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

// A small line chart: series = [{name, color, points: [[t, v], ...]}].
function drawChart(canvas, series, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const left = 56, bottom = 20, top = 8, right = 8;
  const now = Date.now() / 1000, t0 = now - HISTORY;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (v != null && v > max) max = v;
  max = max > 0 ? max * 1.15 : 1;
  g.strokeStyle = "#2a323c"; g.fillStyle = "#8a96a3"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    g.beginPath(); g.moveTo(left, y); g.lineTo(w - right, y); g.stroke();
    g.fillText(fmt.n((max * i) / 4) + (unit ? " " + unit : ""), 4, y + 4);
  }
  for (let m = 0; m <= 5; m++) {
    const x = left + ((w - left - right) * m) / 5;
    g.fillText("-" + Math.round(HISTORY - (HISTORY * m) / 5) + "s", x - 12, h - 4);
  }
  for (const s of series) {
    g.strokeStyle = s.color; g.lineWidth = 1.6; g.beginPath();
    let started = false;
    for (const [t, v] of s.points) {
      if (v == null || t < t0) continue;
      const x = left + ((t - t0) / HISTORY) * (w - left - right);
      const y = top + (h - top - bottom) * (1 - v / max);
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    }
    g.stroke();
  }
}

function chartPanel(id, title, seriesOf, unit, wide) {
  return {
    id, title, wide,
    build(root) {
      root.append(el("canvas", { id: id + "-canvas" }), el("div", { class: "legend", id: id + "-legend" }));
    },
    update() {
      const series = seriesOf();
      drawChart(document.getElementById(id + "-canvas"), series, unit);
      const legend = document.getElementById(id + "-legend");
      legend.replaceChildren(...series.map((s) => el("span", {}, el("i", { style: "background:" + s.color }), s.name)));
    },
  };
}

const PANELS = [
  chartPanel("qps", "Requests per second", () => [
    { name: "total", color: COLORS[0], points: history.map((h) => [h.t, h.stats.totals.qps["1s"]]) },
  ], "/s"),
  chartPanel("server-qps", "Requests per second by server", () => {
    // The servers there are now (a removed one leaves the legend).
    const last = history.length ? history[history.length - 1].stats : null;
    const names = last ? servers(last).map((s) => s.pool + "/" + s.name) : [];
    return names.map((key) => ({
      name: key, color: serverColor(key),
      points: history.map((h) => {
        const s = servers(h.stats).find((x) => x.pool + "/" + x.name === key);
        return [h.t, s ? s.qps["1s"] : null];
      }),
    }));
  }, "/s"),
  chartPanel("latency", "Latency (10 s window)", () => [
    { name: "p50", color: COLORS[1], points: history.map((h) => [h.t, h.stats.totals.latency_ms.p50]) },
    { name: "p99", color: COLORS[2], points: history.map((h) => [h.t, h.stats.totals.latency_ms.p99]) },
  ], "ms"),
  chartPanel("errors", "5xx share (10 s window)", () => [
    { name: "5xx / all", color: COLORS[3], points: history.map((h) => [h.t, (h.stats.totals.error_ratio_10s || 0) * 100]) },
  ], "%"),
  Object.assign(chartPanel("fleet-qps", "Fleet: requests per second by instance", () => [
    { name: "this instance", color: COLORS[0], points: history.map((h) => [h.t, h.stats.totals.qps["1s"]]) },
    ...[...fleetHistory.entries()].map(([name, points], i) => ({ name, color: COLORS[(i + 1) % COLORS.length], points })),
  ], "/s", true), { fleet: true }),
  {
    id: "fleet", title: "Fleet", wide: true, fleet: true,
    build(root) { root.append(el("table", { id: "fleet-table" })); },
    update(stats) {
      const f = stats.fleet;
      if (!f) return;
      const head = el("tr", {}, ...["instance", "status", "req/s", "5xx (10 s)", "p99", "servers up", "requests"].map((h) => el("th", {}, h)));
      const row = (i, total) => el("tr", { "data-instance": i.name || "total", class: total ? "total" : "" },
        el("td", {}, total ? "fleet total" : i.name + (i.address ? " (" + i.address + ")" : "")),
        el("td", {}, total ? f.totals.instances_up + " / " + f.totals.instances + " up"
          : el("span", { class: "pill " + (i.up ? "up" : "down") }, i.up ? "up" : "down: " + i.error)),
        el("td", { class: "num" }, fmt.n(i.qps ? i.qps["10s"] : null)), el("td", { class: "num" }, fmt.pct(i.error_ratio_10s)),
        el("td", { class: "num" }, total ? "" : fmt.ms(i.latency_ms ? i.latency_ms.p99 : null)),
        el("td", { class: "num" }, i.servers == null ? "–" : i.servers_up + " / " + i.servers), el("td", { class: "num" }, fmt.n(i.requests)));
      document.getElementById("fleet-table").replaceChildren(head, ...f.instances.map((i) => row(i, false)), row(f.totals, true));
    },
  },
  {
    id: "servers", title: "Pools and servers", wide: true,
    build(root) { root.append(el("table", { id: "servers-table" })); },
    update(stats) {
      const head = el("tr", {}, ...["pool", "server", "address", "link", "state", "check", "weight", "in flight", "req/s", "p50", "p99", "requests", "5xx", "conns", "reuse"].map((h) => el("th", {}, h)));
      const rows = servers(stats).map((s) => el("tr", { "data-server": s.name, "data-state": stateOf(s), class: "row-" + stateOf(s) },
        el("td", {}, s.pool), el("td", {}, s.name), el("td", { class: "muted" }, s.address),
        el("td", { class: "link" }, link(s)),
        el("td", {}, el("span", { class: "pill " + stateOf(s) }, stateOf(s))),
        el("td", { class: "check" }, checkText(s)),
        el("td", { class: "num" }, s.weight), el("td", { class: "num" }, s.in_flight),
        el("td", { class: "num qps" }, fmt.n(s.qps["10s"])), el("td", { class: "num" }, fmt.ms(s.latency_ms.p50)),
        el("td", { class: "num" }, fmt.ms(s.latency_ms.p99)), el("td", { class: "num" }, fmt.n(s.requests)),
        el("td", { class: "num" }, fmt.n(s.by_class["5xx"])),
        el("td", { class: "num", title: s.connections ? s.connections.idle + " idle, " + fmt.n(s.connections.opened) + " opened, " + fmt.n(s.connections.closed) + " closed" : "" },
          s.connections ? s.connections.open : "–"),
        el("td", { class: "num reuse" }, s.connections ? fmt.pct(s.connections.reuse) : "–")));
      document.getElementById("servers-table").replaceChildren(head, ...rows);
    },
  },
  {
    id: "listeners", title: "Listeners", wide: false,
    build(root) { root.append(el("table", { id: "listeners-table" })); },
    update(stats) {
      const head = el("tr", {}, ...["listener", "connections", "req/s", "in", "out", "TLS 1.3 / 1.2", "TLS failures"].map((h) => el("th", {}, h)));
      const rows = stats.listeners.map((l) => el("tr", {}, el("td", {}, l.name), el("td", { class: "num" }, l.connections),
        el("td", { class: "num" }, fmt.n(l.qps["10s"])), el("td", { class: "num" }, fmt.bytes(l.bytes_in)),
        el("td", { class: "num" }, fmt.bytes(l.bytes_out)),
        el("td", { class: "num" }, l.tls.handshakes_tls13 + " / " + l.tls.handshakes_tls12), el("td", { class: "num" }, l.tls.failures)));
      document.getElementById("listeners-table").replaceChildren(head, ...rows);
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
      const head = el("tr", {}, ...["listener", "pool", "role", "using", "active", "sessions", "up", "down", "connect failures", "refused"].map((h) => el("th", {}, h)));
      const rows = tcp.map((l) => el("tr", { "data-listener": l.name }, el("td", {}, l.name), el("td", {}, l.endpoint.pool),
        el("td", {}, l.endpoint.role || "tcp"),
        el("td", { class: "using" }, l.endpoint.refusing ? el("span", { class: "pill down" }, "refusing") : (l.endpoint.using || []).join(", ")),
        el("td", { class: "num" }, l.tcp.active), el("td", { class: "num" }, fmt.n(l.tcp.sessions)),
        el("td", { class: "num" }, fmt.bytes(l.tcp.bytes_up)), el("td", { class: "num" }, fmt.bytes(l.tcp.bytes_down)),
        el("td", { class: "num" }, fmt.n(l.tcp.connect_failures)), el("td", { class: "num" }, fmt.n(l.tcp.refused))));
      document.getElementById("tcp-table").replaceChildren(head, ...rows);
      const dbHead = el("tr", {}, ...["pool", "server", "role", "lag", "why", "active", "sessions"].map((h) => el("th", {}, h)));
      const dbRows = servers(stats).filter((s) => s.database || s.tcp).map((s) => el("tr", { "data-server": s.name },
        el("td", {}, s.pool), el("td", {}, s.name),
        el("td", { class: "role" }, s.database ? el("span", { class: "pill " + (s.database.role === "down" ? "down" : "up") }, s.database.role) : "-"),
        el("td", { class: "num" }, s.database && s.database.lag_seconds != null ? s.database.lag_seconds + " s" : "-"),
        el("td", { class: "muted" }, s.database ? s.database.reason : ""),
        el("td", { class: "num" }, s.tcp ? s.tcp.active : "-"), el("td", { class: "num" }, s.tcp ? fmt.n(s.tcp.sessions) : "-")));
      document.getElementById("db-table").replaceChildren(dbHead, ...dbRows);
    },
  },
  {
    id: "firewall", title: "Firewall", wide: false,
    build(root) { root.append(el("table", { id: "firewall-table" })); },
    update(stats) {
      const fw = stats.firewall || { rules: [], connections_refused: {}, bad_paths: 0 };
      const head = el("tr", {}, ...["rule", "action", "matches"].map((h) => el("th", {}, h)));
      const rows = fw.rules.map((r) => el("tr", {}, el("td", {}, r.name), el("td", {}, r.action), el("td", { class: "num" }, fmt.n(r.hits))));
      rows.push(el("tr", {}, el("td", {}, "path normalisation"), el("td", {}, "reject"), el("td", { class: "num" }, fmt.n(fw.bad_paths))));
      for (const [l, n] of Object.entries(fw.connections_refused))
        rows.push(el("tr", {}, el("td", {}, "refused at accept (" + l + ")"), el("td", {}, "close"), el("td", { class: "num" }, fmt.n(n))));
      for (const b of fw.bans || [])
        rows.push(el("tr", {}, el("td", {}, "banned " + b.address), el("td", { class: "muted" }, b.reason), el("td", { class: "num" }, b.remaining_seconds + " s")));
      for (const c of fw.top_blocked_clients || [])
        rows.push(el("tr", {}, el("td", {}, "top blocked " + c.address), el("td", {}, ""), el("td", { class: "num" }, fmt.n(c.blocked))));
      for (const e of (fw.recent_events || []).slice(0, 8))
        rows.push(el("tr", {}, el("td", { class: "muted" }, new Date(e.time_unix_ms).toLocaleTimeString() + " " + e.client), el("td", {}, e.rule + " (" + e.action + ")"), el("td", { class: "muted" }, e.request)));
      document.getElementById("firewall-table").replaceChildren(head, ...rows);
    },
  },
  {
    id: "certificates", title: "Certificates", wide: false,
    build(root) { root.append(el("table", { id: "certificates-table" })); },
    update(stats) {
      const head = el("tr", {}, ...["listener", "certificate", "expires in"].map((h) => el("th", {}, h)));
      const rows = [];
      for (const l of stats.listeners) for (const c of l.certificates)
        rows.push(el("tr", {}, el("td", {}, l.name), el("td", {}, c.name), el("td", { class: "num" }, fmt.days(c.expires_in_seconds))));
      document.getElementById("certificates-table").replaceChildren(head, ...rows);
    },
  },
];

function buildPanels() {
  const main = document.getElementById("panels");
  for (const p of PANELS) {
    const root = el("div", { class: "panel" + (p.wide ? " wide" : ""), id: "panel-" + p.id }, el("h2", {}, p.title));
    p.build(root);
    main.append(root);
  }
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

function render(stats) {
  history.push({ t: stats.time_unix_ms / 1000, stats });
  while (history.length > HISTORY) history.shift();
  rememberFleet(stats);
  summary(stats);
  for (const p of PANELS) {
    if (p.fleet) document.getElementById("panel-" + p.id).hidden = !stats.fleet;
    p.update(stats);
  }
}

// Fills the charts with the last 15 minutes rampart kept, then goes live.
async function start() {
  const token = new URLSearchParams(location.search).get("token");
  try {
    const r = await fetch("/api/stats?history=1" + (token ? "&token=" + encodeURIComponent(token) : ""));
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
  connect();
}

function connect() {
  const status = document.getElementById("status");
  const token = new URLSearchParams(location.search).get("token");
  const src = new EventSource("/api/stats/stream" + (token ? "?token=" + encodeURIComponent(token) : ""));
  let last = Date.now();
  let shutdown = false;
  const show = (text, cls) => { status.textContent = text; status.className = "status " + cls; };
  src.addEventListener("stats", (e) => {
    last = Date.now(); shutdown = false;
    show("live", "live");
    render(JSON.parse(e.data));
  });
  src.addEventListener("shutdown", () => { shutdown = true; show("shutting down", "lost"); });
  src.onerror = () => show((shutdown ? "shut down" : "connection lost") + ", retrying…", "lost");
  // Events come once a second: past 3 s without one, say so.
  setInterval(() => {
    const quiet = Math.round((Date.now() - last) / 1000);
    if (quiet >= 3) show((shutdown ? "shutting down · " : "") + "no data for " + quiet + " s", "lost");
  }, 1000);
}

// The infrastructure diagram (`rampart plan`), when the config has a
// [topology]: drawn by rampart as SVG, shown as an image (no script runs).
async function showPlan() {
  const token = new URLSearchParams(location.search).get("token");
  try {
    const r = await fetch("/api/plan.svg" + (token ? "?token=" + encodeURIComponent(token) : ""));
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
