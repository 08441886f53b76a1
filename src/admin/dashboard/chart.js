// rampart dashboard: time charts on a canvas. Round tick values, the unit
// once in the corner, the y-axis scaled to what the chosen range shows,
// clock times on the x-axis, changes (drain, add, remove, reload) marked
// as dashed lines, and a hover read-out with the clock time and values.
"use strict";

const Chart = (() => {
  const PAD = { left: 46, right: 10, top: 16, bottom: 20 };

  /* A round step for about `n` ticks up to `max`: 1, 2 or 5 times a power of ten. */
  function niceStep(max, n) {
    const raw = max / n;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  /* "1.5k", "20", "0.25": short, and never two labels alike on one axis. */
  function tickLabel(v, step) {
    if (v >= 1e6) return +(v / 1e6).toFixed(step >= 1e6 ? 0 : 1) + "M";
    if (v >= 1e3) return +(v / 1e3).toFixed(step >= 1e3 ? 0 : 1) + "k";
    const digits = step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step)));
    return v.toFixed(digits);
  }

  /* Clock-time ticks on round seconds for a window of `span` seconds,
     as many as fit `width` pixels without touching. */
  function timeStep(span, width) {
    for (const s of [10, 15, 30, 60, 120, 180, 300, 600]) {
      const label = s < 60 ? 64 : 46;
      if (span / s <= 6 && (span / s) * label <= width) return s;
    }
    return 900;
  }

  function clock(t, withSeconds) {
    const d = new Date(t * 1000);
    const two = (n) => String(n).padStart(2, "0");
    return two(d.getHours()) + ":" + two(d.getMinutes()) + (withSeconds ? ":" + two(d.getSeconds()) : "");
  }

  const CHANGE_MARK = { drain: "D", undrain: "U", add: "+", remove: "−", weight: "W", reload: "↻", reload_refused: "✕" };
  const CHANGE_COLOR = { drain: "#58a6ff", undrain: "#3fb950", add: "#3fb950", remove: "#d29922", weight: "#8a96a3", reload: "#bc8cff", reload_refused: "#f85149" };

  /* Draws `series` ([{name, color, points: [[t, v]]}]) over the last
     `span` seconds ending `now`; `changes` ([{t, kind, target}]) as marks.
     Returns what the hover needs. */
  function draw(canvas, { series, unit, span, now, changes, max: fixedMax }) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    const g = canvas.getContext("2d");
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const t0 = now - span;
    const plotW = w - PAD.left - PAD.right, plotH = h - PAD.top - PAD.bottom;
    // The y-axis fits what this range shows, not what scrolled out of it.
    let seen = 0;
    for (const s of series) for (const [t, v] of s.points) if (t >= t0 && v != null && v > seen) seen = v;
    const step = niceStep(fixedMax || (seen > 0 ? seen * 1.1 : 1), 4);
    const top = fixedMax || Math.max(step, Math.ceil((seen * 1.05) / step) * step);
    const x = (t) => PAD.left + ((t - t0) / span) * plotW;
    const y = (v) => PAD.top + plotH * (1 - v / top);
    g.font = "11px system-ui"; g.lineWidth = 1;
    g.fillStyle = "#8a96a3"; g.strokeStyle = "#2a323c";
    g.textAlign = "right";
    const yLabels = [], xLabels = [];
    for (let i = 0; i * step <= top + step / 2; i++) {
      const v = i * step, yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(PAD.left, yy); g.lineTo(w - PAD.right, yy); g.stroke();
      yLabels.push(tickLabel(v, step));
      g.fillText(yLabels[i], PAD.left - 6, yy + 4);
    }
    // The unit, once.
    g.textAlign = "left";
    if (unit) g.fillText(unit, 4, 11);
    const ts = timeStep(span, plotW);
    g.textAlign = "center";
    for (let t = Math.ceil(t0 / ts) * ts; t <= now; t += ts) {
      const xx = Math.round(x(t)) + 0.5;
      g.beginPath(); g.moveTo(xx, PAD.top + plotH); g.lineTo(xx, PAD.top + plotH + 4); g.stroke();
      xLabels.push(clock(t, ts < 60));
      g.fillText(xLabels[xLabels.length - 1], xx, h - 5);
    }
    // Changes made to the running state, as dashed lines with a letter.
    const marks = (changes || []).filter((c) => c.t >= t0 && c.t <= now);
    g.setLineDash([3, 3]);
    for (const c of marks) {
      const xx = Math.round(x(c.t)) + 0.5;
      g.strokeStyle = CHANGE_COLOR[c.kind] || "#8a96a3";
      g.beginPath(); g.moveTo(xx, PAD.top); g.lineTo(xx, PAD.top + plotH); g.stroke();
      g.fillStyle = g.strokeStyle;
      g.fillText(CHANGE_MARK[c.kind] || "•", xx, PAD.top - 4);
    }
    g.setLineDash([]);
    for (const s of series) {
      g.strokeStyle = s.color; g.lineWidth = s.width || 1.6; g.beginPath();
      let started = false;
      for (const [t, v] of s.points) {
        if (v == null || t < t0) { started = false; continue; }
        const xx = x(t), yy = y(Math.min(v, top));
        if (started) g.lineTo(xx, yy); else { g.moveTo(xx, yy); started = true; }
      }
      g.stroke();
    }
    return { t0, span, plotW, series, unit, marks, top, yLabels, xLabels };
  }

  /* Shows the clock time and each series' value under the pointer. */
  function attachHover(canvas, tip, state, format) {
    canvas.addEventListener("mousemove", (ev) => {
      const s = state();
      if (!s) return;
      const r = canvas.getBoundingClientRect();
      const t = s.t0 + ((ev.clientX - r.left - PAD.left) / s.plotW) * s.span;
      if (t < s.t0) { tip.hidden = true; return; }
      const lines = [clock(t, true)];
      for (const se of s.series) {
        let best = null;
        for (const p of se.points) if (best == null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
        if (best && Math.abs(best[0] - t) <= 2) lines.push(se.name + ": " + format(best[1]));
      }
      for (const c of s.marks) if (Math.abs(c.t - t) <= s.span / 100) lines.push(c.kind + " " + c.target);
      tip.textContent = lines.join("\n");
      tip.hidden = false;
      tip.style.left = Math.min(ev.clientX - r.left + 12, r.width - 160) + "px";
      tip.style.top = ev.clientY - r.top + 12 + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  return { draw, attachHover, niceStep, tickLabel, clock };
})();
