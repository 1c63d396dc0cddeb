// Baton's status page: polls api/status (relay/status) and renders it. Text
// from the relay goes in with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function num(n, digits) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits ?? 1 });
}

function dur(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function tile(parent, k, v, cls, id) {
  const t = el("div", undefined, "tile");
  if (id) t.id = id;
  t.append(el("div", k, "k"), el("div", v, "v " + (cls || "")));
  parent.append(t);
}

function table(id, head, rows) {
  const t = $(id);
  t.replaceChildren();
  if (!rows.length) { t.hidden = true; return; }
  t.hidden = false;
  const tr = el("tr");
  head.forEach((h) => tr.append(el("th", h)));
  t.append(tr);
  rows.forEach((r) => {
    const row = el("tr");
    if (r.id) row.dataset.key = r.id;
    r.cells.forEach((c) => {
      const td = typeof c === "object" && c !== null ? el("td", c.text, c.cls) : el("td", c);
      if (typeof c === "object" && c !== null && c.name) td.dataset.name = c.name;
      row.append(td);
    });
    t.append(row);
  });
}

const stateClass = { idle: "mute", flowing: "ok", healthy: "ok", waiting: "warn", ejected: "bad", outage: "bad", retrying: "bad", full: "bad" };

function render(p) {
  $("version").textContent = p.version + " · " + p.mode + " mode · up " + dur(p.uptime_s);
  const h = $("headline");
  h.replaceChildren();
  tile(h, "ready", p.ready ? "ready" : "not ready", p.ready ? "ok" : "bad", "ready");
  tile(h, "accepted/s", num(p.accepted_per_s), "", "accepted");
  tile(h, "delivered/s", num(p.delivered_per_s), "", "delivered");
  tile(h, "dropped/s", num(p.dropped_per_s), p.dropped_per_s > 0 ? "warn" : "", "dropped");
  tile(h, "memory (RSS / limit)", bytes(p.memory.rss_bytes) + " / " + (p.memory.limit_bytes ? bytes(p.memory.limit_bytes) : "none"));
  tile(h, "buffer (bytes / budget)", bytes(p.disk.pending_bytes) + " / " + bytes(p.disk.budget_bytes), p.disk.full ? "bad" : "");
  tile(h, "disk (files / free)", bytes(p.disk.disk_bytes) + " / " + (p.disk.free_bytes ? bytes(p.disk.free_bytes) : "?"));
  $("why").textContent = p.ready ? "" : "Not ready: " + p.not_ready.join("; ");

  table("streams", ["class", "kind", "state", "pending", "bytes", "oldest", "intake/s", "drain/s", "destination", "error"],
    p.streams.map((s) => ({
      id: s.class + "/" + s.kind,
      cells: [s.class, s.kind, { text: s.state, cls: stateClass[s.state], name: "state" },
        { text: num(s.pending_records, 0), name: "pending" }, bytes(s.pending_bytes), dur(s.oldest_age_s),
        num(s.intake_per_s), num(s.drain_per_s), s.destination, { text: s.error || "", cls: "err", name: "error" }],
    })));

  const members = [];
  (p.upstreams || []).forEach((u) => u.members.forEach((m) => members.push({
    id: "upstream/" + u.name + "/" + m.url,
    cells: [u.name, m.url, { text: m.state, cls: stateClass[m.state], name: "state" },
      m.latency_ms === null ? "–" : num(m.latency_ms) + " ms",
      { text: m.last_error ? m.last_error + " (" + new Date(m.last_error_at).toLocaleTimeString() + ")" : "", cls: "err", name: "error" }],
  })));
  table("upstreams", ["upstream", "url", "state", "latency", "last error"], members);
  table("kafka", ["kafka cluster", "state", "produce p50 / p99", "request / record / connect errors", "dead-lettered", "last error"],
    (p.kafka || []).map((k) => {
      const st = k.fault ? "refused" : k.connected ? "connected" : "down";
      return {
        id: "kafka/" + k.name,
        cells: [k.name, { text: st, cls: st === "connected" ? "ok" : "bad", name: "state" },
          num(k.produce_p50_ms) + " / " + num(k.produce_p99_ms) + " ms",
          k.request_errors + " / " + k.record_errors + " / " + k.connect_errors, k.dead_lettered,
          { text: k.fault || k.last_error || "", cls: "err", name: "error" }],
      };
    }));

  table("drops", ["class", "reason", "records", "items", "records/s"],
    (p.drops || []).map((d) => ({ cells: [d.class, d.reason, num(d.records, 0), num(d.items, 0), num(d.per_s)] })));
  $("nodrops").hidden = (p.drops || []).length > 0;
  const i = p.identity;
  const id = $("identity");
  id.replaceChildren(
    el("span", `recovered ${i.recovered} + accepted ${i.accepted} + produced ${i.produced} = delivered ${i.delivered} + dropped ${i.dropped} + aggregated ${i.aggregated} + pending ${i.pending}: `),
    el("b", i.balanced ? "balanced" : "NOT balanced", i.balanced ? "ok" : "bad"));
  id.lastChild.id = "balanced";

  const m = p.managed;
  $("managed-section").hidden = !m;
  if (m) {
    const g = $("managed");
    g.replaceChildren();
    tile(g, "registration (" + m.upstream + ")", m.registered ? "registered" : "not registered", m.registered ? "ok" : "bad");
    tile(g, "configs cached", num(m.configs, 0));
    tile(g, "misses (pending/unknown keys)", num(m.misses, 0));
    tile(g, "records waiting for configs", num(m.waiting_records, 0));
    tile(g, "fetches (failed)", num(m.requests, 0) + " (" + num(m.failures, 0) + ")");
    tile(g, "fetch p50 / p99", num(m.fetch_p50_ms) + " / " + num(m.fetch_p99_ms) + " ms");
    if (m.last_error) tile(g, "last upstream error", m.last_error, "bad");
  }
  charts(p.series);
}

// Charts: uPlot, sized to their container.
const batonCharts = {};
window.batonCharts = batonCharts;

function chart(id, series, data) {
  const box = $(id);
  const width = Math.max(box.clientWidth, 200);
  let u = batonCharts[id];
  if (!u) {
    u = new uPlot({
      width, height: 180,
      // spanGaps: ack latency is null where nothing was acked.
      series: [{}].concat(series.map((s) => ({ label: s[0], stroke: s[1], width: 2, spanGaps: true }))),
      axes: [{ stroke: "#8b949e" }, { stroke: "#8b949e", size: 60 }],
      scales: { x: { time: true } },
      legend: { live: false },
    }, data, box);
    batonCharts[id] = u;
  } else {
    if (Math.abs(u.width - width) > 4) u.setSize({ width, height: 180 });
    u.setData(data);
  }
}

function charts(s) {
  chart("chart-rates", [["accepted", "#0969da"], ["delivered", "#1a7f37"], ["dropped", "#cf222e"]], [s.t, s.accepted, s.delivered, s.dropped]);
  chart("chart-backlog", [["pending records", "#9a6700"]], [s.t, s.backlog]);
  chart("chart-ack", [["p50", "#0969da"], ["p99", "#8250df"]], [s.t, s.ack_p50_ms, s.ack_p99_ms]);
}

let interval = 1000;
async function poll() {
  try {
    const r = await fetch("api/status", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const p = await r.json();
    interval = Math.max(p.interval_ms || 1000, 500);
    render(p);
    $("stale").hidden = !p.read_error;
    $("stale").textContent = p.read_error ? "metrics read failed: " + p.read_error : "";
    document.body.dataset.updated = p.time;
  } catch (e) {
    $("stale").hidden = false;
    $("stale").textContent = "Baton does not answer (" + e.message + "); showing the last data.";
  }
  setTimeout(poll, interval);
}
poll();
