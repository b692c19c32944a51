// Terrarium dashboard: draws the snapshots /api/stream sends (see
// docs/dashboard.md). Everything from the run is put in the page as text
// (textContent), never as HTML: agents' actions and messages are untrusted.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const palette = ["#2f6f4f", "#c0532a", "#3b5fa8", "#8a6d00", "#7a3f8f", "#2a8a8a", "#a83b5f", "#5a6b2a"];

// Measured in the page, read by the tests and the benchmark:
// fps (animation frames in the last second), renders (snapshots drawn in
// the last second), tickRate (ticks a second the snapshots show).
const stats = { fps: 0, renders: 0, tickRate: 0, snapshots: 0, drawn: 0, tick: 0, errors: 0, renderMs: 0, parseMs: 0 };
window.terrarium = { stats, snapshot: null };

let pending = null;
let scheduled = false;
const recentTicks = []; // [time, tick] of the last second or so

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

function fmtNum(v) {
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return String(Math.round(v * 1000) / 1000);
}

// --- the stream ---------------------------------------------------------

function connect() {
  const es = new EventSource("api/stream");
  es.addEventListener("state", (e) => {
    const t0 = performance.now();
    pending = JSON.parse(e.data);
    stats.parseMs = 0.8 * stats.parseMs + 0.2 * (performance.now() - t0);
    stats.snapshots++;
    setConn(pending.source === "recording" ? "recording" : "live");
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(draw);
    }
  });
  es.addEventListener("end", () => {
    es.close();
    setConn("the run ended; the server stopped");
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) setConn("disconnected");
    else setConn("reconnecting…");
  };
}

function setConn(text) {
  $("conn").textContent = text;
}

function draw() {
  scheduled = false;
  if (!pending) return;
  const s = pending;
  pending = null;
  const t0 = performance.now();
  try {
    render(s);
    stats.renderMs = 0.8 * stats.renderMs + 0.2 * (performance.now() - t0);
  } catch (err) {
    stats.errors++;
    throw err;
  }
  stats.drawn++;
}

// fps: a frame loop that only counts, so a page that cannot keep up shows
// in the number.
let frames = 0, drawnAtSecond = 0, lastSecond = performance.now();
function count(now) {
  frames++;
  if (now - lastSecond >= 1000) {
    const secs = (now - lastSecond) / 1000;
    stats.fps = Math.round(frames / secs);
    stats.renders = Math.round((stats.drawn - drawnAtSecond) / secs);
    frames = 0;
    drawnAtSecond = stats.drawn;
    lastSecond = now;
  }
  requestAnimationFrame(count);
}

// --- rendering ----------------------------------------------------------

function render(s) {
  window.terrarium.snapshot = s;
  stats.tick = s.tick;
  const now = performance.now();
  recentTicks.push([now, s.tick]);
  while (recentTicks.length > 2 && now - recentTicks[0][0] > 2000) recentTicks.shift();
  if (recentTicks.length > 1) {
    const [t0, k0] = recentTicks[0];
    stats.tickRate = now > t0 ? Math.round(((s.tick - k0) * 1000) / (now - t0) * 10) / 10 : 0;
  }
  renderHeader(s);
  renderView(s);
  renderCharts(s.series);
  renderRoster(s);
  renderLeases(s);
  renderViolations(s);
  renderRecent(s.recent);
}

function renderHeader(s) {
  $("run").textContent = s.run || "(waiting for run.started)";
  const st = $("status");
  st.textContent = s.status;
  st.className = "badge " + s.status;
  $("scenario").textContent = s.scenario || "–";
  $("world").textContent = s.world || "–";
  $("stepping").textContent = s.stepping || "–";
  $("tick").textContent = s.tick;
  $("ticks").textContent = s.ticks ? " / " + s.ticks : "";
  // The events (roster, leases, violations) may trail the loop's ticks.
  $("behind").textContent = s.event_tick + 1 < s.tick ? ` (events to t${s.event_tick})` : "";
  $("rate").textContent = stats.tickRate;
  $("wall").textContent = s.wall_us ? (s.wall_us / 1000).toFixed(2) + " ms" : "–";
  const ended = !["starting", "running", "playing", "paused"].includes(s.status);
  const can = s.controls && !ended;
  $("pause").disabled = !can || s.status === "paused";
  $("step").disabled = !can || s.status !== "paused";
  $("resume").disabled = !can || s.status !== "paused";
  $("token").disabled = !s.controls;
}

function renderView(s) {
  const box = $("view");
  $("viewtick").textContent = s.view ? "at tick " + s.view_tick : "";
  if (!s.view) return;
  const v = s.view;
  // Rebuild only when the picture changed.
  if (box.dataset.tick === String(s.view_tick) && box.dataset.run === s.run) return;
  box.dataset.tick = String(s.view_tick);
  box.dataset.run = s.run;
  const parts = [];
  if (v.grid) parts.push(gridView(v.grid));
  if (v.places) parts.push(placesView(v.places));
  if (v.lines) {
    const ol = el("ol", null, "lines mono");
    for (const l of v.lines) ol.appendChild(el("li", l));
    parts.push(ol);
  }
  for (const t of v.tables || []) parts.push(tableView(t));
  box.replaceChildren(...parts);
}

function gridView(g) {
  const wrap = el("div");
  const cell = Math.max(2, Math.min(40, Math.floor(520 / Math.max(g.width, g.height))));
  const c = el("canvas", null, "grid");
  c.width = g.width * cell;
  c.height = g.height * cell;
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fbfcfa";
  ctx.fillRect(0, 0, c.width, c.height);
  const layers = Object.keys(g.layers || {}).sort();
  layers.forEach((name, i) => {
    ctx.fillStyle = i === 0 ? "rgba(60,120,60,0.35)" : "rgba(40,40,40,0.25)";
    for (const [x, y, v] of g.layers[name]) {
      if (v) ctx.fillRect(x * cell, y * cell, cell, cell);
    }
  });
  const pad = cell > 3 ? 1 : 0;
  for (const [x, y, gi] of g.agents || []) {
    ctx.fillStyle = palette[gi % palette.length];
    ctx.fillRect(x * cell + pad, y * cell + pad, cell - 2 * pad, cell - 2 * pad);
  }
  const legend = el("div", null, "legend");
  (g.groups || []).forEach((name, gi) => {
    const sp = el("span");
    const sw = el("i");
    sw.style.background = palette[gi % palette.length];
    sp.append(sw, document.createTextNode(name));
    legend.appendChild(sp);
  });
  layers.forEach((name, i) => {
    const sp = el("span");
    const sw = el("i");
    sw.style.background = i === 0 ? "rgba(60,120,60,0.35)" : "rgba(40,40,40,0.25)";
    sp.append(sw, document.createTextNode(name + " (cells)"));
    legend.appendChild(sp);
  });
  const meta = el("div", `${g.width}×${g.height}, ${(g.agents || []).length} agents`, "muted");
  wrap.append(c, legend, meta);
  return wrap;
}

function placesView(places) {
  const box = el("div", null, "places");
  for (const p of places) {
    const card = el("div", null, "place");
    card.appendChild(el("b", p.name));
    card.appendChild(el("div", (p.agents && p.agents.length) ? p.agents.join(", ") : "nobody"));
    if (p.items && p.items.length) card.appendChild(el("div", "items: " + p.items.join(", "), "muted"));
    box.appendChild(card);
  }
  return box;
}

function tableView(t) {
  const wrap = el("div", null, "scroll");
  if (t.title) wrap.appendChild(el("h3", t.title));
  const table = el("table");
  const head = el("tr");
  for (const c of t.columns || []) head.appendChild(el("th", c));
  const thead = el("thead");
  thead.appendChild(head);
  const body = el("tbody");
  for (const r of t.rows || []) {
    const tr = el("tr");
    for (const c of r) tr.appendChild(el("td", c));
    body.appendChild(tr);
  }
  table.append(thead, body);
  wrap.appendChild(table);
  return wrap;
}

const charts = new Map(); // metric -> {line, lo, hi, last}

function renderCharts(series) {
  const box = $("charts");
  if (!series || !series.names || series.names.length === 0 || !series.ticks || series.ticks.length === 0) return;
  const ticks = series.ticks;
  if (!changed("series", [ticks.length, ticks[ticks.length - 1], ticks[0]])) return;
  if (charts.size === 0) box.replaceChildren();
  const W = 260, H = 70;
  const t0 = ticks[0], t1 = ticks[ticks.length - 1];
  for (const name of series.names) {
    let ch = charts.get(name);
    if (!ch) {
      const wrap = el("div", null, "chart");
      wrap.dataset.metric = name;
      const label = el("div", name, "name");
      const s = svg("svg", { width: W, height: H + 14, viewBox: `0 0 ${W} ${H + 14}` });
      const line = svg("polyline", { points: "" });
      const hi = svg("text", { x: 2, y: 10 });
      const lo = svg("text", { x: 2, y: H - 2 });
      const last = svg("text", { x: W - 2, y: H + 12, "text-anchor": "end" });
      const first = svg("text", { x: 2, y: H + 12 });
      s.append(line, hi, lo, last, first);
      wrap.append(label, s);
      box.appendChild(wrap);
      ch = { line, hi, lo, last, first, label };
      charts.set(name, ch);
    }
    const vals = series.values[name] || [];
    let min = Infinity, max = -Infinity;
    for (const v of vals) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (min === max) { min -= 1; max += 1; }
    const pts = [];
    for (let i = 0; i < vals.length; i++) {
      const x = t1 > t0 ? ((ticks[i] - t0) / (t1 - t0)) * (W - 4) + 2 : 2;
      const y = H - 4 - ((vals[i] - min) / (max - min)) * (H - 16);
      pts.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    ch.line.setAttribute("points", pts.join(" "));
    ch.line.dataset.points = String(pts.length);
    ch.hi.textContent = fmtNum(max);
    ch.lo.textContent = fmtNum(min);
    ch.first.textContent = "t" + t0;
    ch.last.textContent = "t" + t1 + ": " + fmtNum(vals[vals.length - 1]);
  }
}

const rows = new Map(); // agent id -> {tr, cells, key}
let rosterAgents = []; // the last snapshot's agents, for rows scrolled into view
let rowHeight = 0;

// renderRoster keeps a row per agent in id order, and fills in only the
// rows in (or near) the scrolled view: a roster of thousands of agents
// that all act every tick costs a page only what it shows.
function renderRoster(s) {
  const body = $("roster").tBodies[0];
  $("agentcount").textContent = s.agents_total > s.agents.length
    ? `${s.agents.length} of ${s.agents_total} shown` : `${s.agents_total}`;
  rosterAgents = s.agents;
  const seen = new Set();
  let prev = null;
  for (const a of s.agents) {
    seen.add(a.id);
    let r = rows.get(a.id);
    if (!r) {
      const tr = el("tr");
      tr.dataset.agent = a.id;
      const cells = [];
      for (let i = 0; i < 9; i++) cells.push(tr.appendChild(el("td")));
      cells[0].className = "mono";
      cells[0].textContent = a.id;
      cells[7].className = "mono action";
      r = { tr, cells, key: "" };
      rows.set(a.id, r);
    }
    const want = prev ? prev.nextSibling : body.firstChild;
    if (want !== r.tr) body.insertBefore(r.tr, want);
    prev = r.tr;
  }
  for (const [id, r] of rows) {
    if (!seen.has(id)) {
      r.tr.remove();
      rows.delete(id);
    }
  }
  fillVisibleRows();
}

function fillRow(a) {
  const r = rows.get(a.id);
  if (!r) return;
  const key = [a.group, a.state, a.pid, a.restarts, a.actions, a.missing, a.last, a.last_tick, a.filled, a.note].join("\u0000");
  if (key === r.key) return;
  r.key = key;
  const v = [a.id, a.group, a.note ? `${a.state} (${a.note})` : a.state, a.pid || "", a.restarts, a.actions, a.missing, a.last, a.last_tick || ""];
  for (let i = 1; i < 9; i++) {
    const text = String(v[i]);
    if (r.cells[i].textContent !== text) r.cells[i].textContent = text;
  }
  r.cells[2].className = "state-" + a.state;
  r.tr.className = a.filled ? "filled" : "";
}

function fillVisibleRows() {
  const box = $("rosterbox");
  const list = rosterAgents;
  if (list.length === 0) return;
  if (!rowHeight) {
    fillRow(list[0]);
    const first = rows.get(list[0].id);
    rowHeight = (first && first.tr.getBoundingClientRect().height) || 20;
  }
  const head = $("roster").tHead.getBoundingClientRect().height;
  const from = Math.max(0, Math.floor((box.scrollTop - head) / rowHeight) - 10);
  const to = Math.min(list.length, Math.ceil((box.scrollTop + box.clientHeight) / rowHeight) + 10);
  for (let i = from; i < to; i++) fillRow(list[i]);
}

const drawnKeys = new Map(); // section -> what it last drew, to skip redraws

function changed(section, value) {
  const key = JSON.stringify(value);
  if (drawnKeys.get(section) === key) return false;
  drawnKeys.set(section, key);
  return true;
}

function fillTable(id, items, cells) {
  if (!changed(id, items)) return;
  const body = $(id).tBodies[0];
  const trs = items.map((it) => {
    const tr = el("tr");
    for (const c of cells(it)) tr.appendChild(el("td", c));
    return tr;
  });
  body.replaceChildren(...trs);
}

function renderLeases(s) {
  $("leasecount").textContent = s.leases.length ? String(s.leases.length) : "none held";
  fillTable("leases", s.leases, (l) => [l.path + (l.prefix ? "/…" : ""), l.agent, l.token, "t" + l.since]);
}

function renderViolations(s) {
  $("violcount").textContent = s.violations_total ? `${s.violations_total}, latest first` : "none";
  fillTable("violations", s.violations, (v) => ["t" + v.tick, v.agent || "", v.what || "", v.reason || ""]);
}

function renderRecent(lines) {
  if (!changed("recent", lines)) return;
  const ol = $("recent");
  const items = (lines || []).map((l) => el("li", l));
  ol.replaceChildren(...items);
}

// --- controls -----------------------------------------------------------

function token() {
  return $("token").value.trim();
}

async function control(action) {
  const msg = $("ctlmsg");
  msg.className = "ctlmsg";
  msg.textContent = action + "…";
  try {
    const res = await fetch("api/control", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Terrarium-Token": token() },
      body: JSON.stringify({ action }),
    });
    const body = await res.json();
    if (!res.ok) {
      msg.className = "ctlmsg err";
      msg.textContent = body.error || res.statusText;
      return;
    }
    msg.textContent = action + " ok";
  } catch (err) {
    msg.className = "ctlmsg err";
    msg.textContent = String(err);
  }
}

function setup() {
  // The token may come in the address (…/#token=…): keep it for this tab
  // and take it out of the address bar.
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("terrarium-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("token").value = sessionStorage.getItem("terrarium-token") || "";
  $("token").addEventListener("change", () => sessionStorage.setItem("terrarium-token", token()));
  for (const a of ["pause", "step", "resume"]) $(a).addEventListener("click", () => control(a));
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("rosterbox").addEventListener("scroll", fillVisibleRows, { passive: true });
  requestAnimationFrame(count);
  connect();
}

setup();
