// pystatus dashboard: every 5 s, the fleet (summary, the page of the services table,
// those needing attention) is replaced by the server's HTML for it (/fragments/fleet), so the
// page reads the same with JavaScript as without. Keyboard focus survives a refresh.
"use strict";

const REFRESH_MS = 5000;

// The server's formats (pystatus/dashboard/__init__.py: when, duration).
const pad = (n) => String(n).padStart(2, "0");
function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} `
       + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}
function duration(seconds) {
  const s = Math.floor(Math.max(0, seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}
window.pystatus = { when, duration };

async function refresh() {
  const stamp = document.getElementById("refreshed");
  try {
    const response = await fetch(`/fragments/fleet${location.search}`);
    if (!response.ok) throw new Error(`${response.status}`);
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const focused = document.activeElement && document.activeElement.closest("#services, #attention")
      ? document.activeElement.getAttribute("href") : null;
    for (const id of ["summary", "services", "attention", "pages"]) {
      const here = document.getElementById(id), there = fresh.getElementById(id);
      if (here && there) here.replaceChildren(...there.childNodes);
    }
    const summary = fresh.getElementById("summary");
    if (summary) document.getElementById("summary").className = summary.className;
    if (focused) {
      const link = [...document.querySelectorAll("#services a, #attention a")]
        .find((a) => a.getAttribute("href") === focused);
      if (link) link.focus();
    }
    stamp.textContent = ` · last at ${when(new Date())}`;
  } catch (error) {
    stamp.textContent = ` · refresh failed (${error.message}), retrying`;
  }
}

setInterval(refresh, REFRESH_MS);
