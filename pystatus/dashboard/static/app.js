// pystatus dashboard: polls /api/status every 5 s; shows a chosen service's history.
"use strict";

const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
let chosen = decodeURIComponent(location.hash.replace(/^#service=/, "")) || null;

const $ = (id) => document.getElementById(id);
const get = async (path) => {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
};
const percent = (u) => (u === null || u === undefined ? "no data" : `${(u * 100).toFixed(2)} %`);
const when = (t) => (t ? new Date(t).toLocaleString() : "ongoing");
const seconds = (s) => {
  s = Math.round(s);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
};
const cell = (text, className) => {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
};
const svgNode = (name, attributes, children = []) => {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
};

async function refreshStatus() {
  try {
    const services = await get("/api/status");
    const body = $("services");
    body.replaceChildren(...services.map((s) => {
      const row = document.createElement("tr");
      row.dataset.service = s.service_name;
      if (s.service_name === chosen) row.className = "selected";
      const badge = document.createElement("span");
      badge.className = `badge ${s.effective_status}`;
      badge.textContent = s.effective_status;
      const status = document.createElement("td");
      status.append(badge);
      if (s.maintenance_until) {  // inside a planned maintenance window
        const until = new Date(s.maintenance_until);
        const note = document.createElement("span");
        note.className = "window";
        note.textContent = ` window until ${until.toLocaleString()}`;
        status.append(note);
      }
      row.append(cell(s.service_name, "name"), status,
                 cell(`${seconds(s.seconds_since)} ago`, "age"), cell(s.current_task || "", "task"));
      return row;
    }));
    $("refreshed").textContent = `(last at ${new Date().toLocaleTimeString()})`;
  } catch (error) {
    $("refreshed").textContent = `(refresh failed: ${error.message})`;
  }
}

function dayColour(day) {
  if (day.uptime === null) return "var(--none)";
  if (day.uptime >= 0.999) return "var(--ok)";
  if (day.uptime >= 0.99) return "#4ac26b";
  if (day.uptime >= 0.95) return "var(--degraded)";
  return "var(--down)";
}

function drawBars(days) {
  const width = 10, gap = 2;
  const bars = days.map((day, i) => svgNode("rect", {
    x: i * (width + gap), y: 0, width, height: 34, rx: 2, fill: dayColour(day), class: "day",
  }, [svgNode("title", {}, [`${day.day}: ${percent(day.uptime)} up, down ${seconds(+day.down_seconds)}`])]));
  $("bars").replaceChildren(svgNode("svg", {
    viewBox: `0 0 ${days.length * (width + gap)} 34`, role: "img",
    "aria-label": `uptime per day over ${days.length} days`,
  }, bars));
}

function drawLatency(points) {
  if (points.length < 2) {
    $("latency").textContent = "No latency measure reported.";
    return;
  }
  const W = 800, H = 160, times = points.map((p) => Date.parse(p.hour));
  const high = Math.max(...points.map((p) => p.p95 ?? p.p50 ?? 0)) || 1;
  const x = (t) => ((t - times[0]) / (times[times.length - 1] - times[0] || 1)) * (W - 50) + 45;
  const y = (v) => H - 20 - (v / high) * (H - 30);
  const line = (key, colour) => svgNode("polyline", {
    fill: "none", stroke: colour, "stroke-width": 2,
    points: points.filter((p) => p[key] !== null).map((p) => `${x(Date.parse(p.hour))},${y(p[key])}`).join(" "),
  }, [svgNode("title", {}, [key])]);
  const label = (v) => svgNode("text", { x: 0, y: y(v) + 4, "font-size": 11, fill: "#59636e" }, [`${Math.round(v)}`]);
  $("latency").replaceChildren(svgNode("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "latency per hour" }, [
    svgNode("line", { x1: 45, x2: W, y1: y(0), y2: y(0), stroke: "#d0d7de" }),
    label(0), label(high), line("p95", "#cf222e"), line("p50", "#0969da"),
  ]));
}

async function showHistory(service) {
  chosen = service;
  location.hash = `service=${encodeURIComponent(service)}`;
  for (const row of $("services").rows) row.classList.toggle("selected", row.dataset.service === service);
  const days = $("range").value;
  const base = `/api/services/${encodeURIComponent(service)}`;
  const [uptime, perDay, incidents, transitions, latency] = await Promise.all([
    get(`${base}/uptime`), get(`${base}/days?days=${days}`), get(`${base}/incidents?days=${days}`),
    get(`${base}/transitions?days=1`), get(`${base}/latency?days=7`),
  ]);
  $("history").hidden = false;
  $("history-title").textContent = service;
  $("uptimes").replaceChildren(...[["24 h", uptime.last_24h], ["7 days", uptime.last_7d], ["30 days", uptime.last_30d]]
    .map(([label, u]) => {
      const box = document.createElement("div");
      const figure = document.createElement("b");
      figure.textContent = percent(u.uptime);
      box.append(figure, `uptime, ${label} (down ${seconds(+u.down_seconds)})`);
      return box;
    }));
  drawBars(perDay);
  $("incidents").replaceChildren(...(incidents.length ? incidents.slice().reverse().map((i) => {
    const row = document.createElement("tr");
    const duration = (Date.parse(i.ended || new Date()) - Date.parse(i.started)) / 1000;
    row.append(cell(when(i.started)), cell(when(i.ended)), cell(seconds(duration)), cell(i.cause));
    return row;
  }) : [Object.assign(document.createElement("tr"), { innerHTML: "<td colspan=4>No incidents.</td>" })]));
  $("timeline").replaceChildren(...(transitions.length ? transitions.slice().reverse().map((t) => {
    const item = document.createElement("li");
    item.textContent = `${new Date(t.at).toLocaleString()}: ${t.from_status || "first heartbeat"} → ${t.to_status}`;
    return item;
  }) : [Object.assign(document.createElement("li"), { textContent: "No changes." })]));
  drawLatency(latency);
}

$("services").addEventListener("click", (event) => {
  const row = event.target.closest("tr");
  if (row && row.dataset.service) showHistory(row.dataset.service);
});
$("range").addEventListener("change", () => chosen && showHistory(chosen));
setInterval(refreshStatus, REFRESH_MS);
refreshStatus();
if (chosen) showHistory(chosen);
