// Conveyor dashboard: hash-routed views over the JSON API and the job event stream.
"use strict";
const view = document.getElementById("view");
let stream = null;
let timer = null;

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options, headers: { "Content-Type": "application/json", ...(options.headers || {}) } });
  if (res.status === 401) { location.href = "/dashboard/login"; throw new Error("unauthenticated"); }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || body.title || res.statusText);
  return body;
}
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function bar(p) {
  if (!p || p.fraction == null) return esc(p?.message || "");
  return `<progress max="100" value="${Math.round(p.fraction * 100)}"></progress> ${Math.round(p.fraction * 100)}% ${esc(p.message || "")}`;
}
function jobRows(jobs, extra = () => "") {
  if (!jobs.length) return `<p class="muted">No jobs.</p>`;
  return `<table><tr><th>Job</th><th>Task</th><th>Queue</th><th>State</th><th>Attempts</th><th>Progress</th><th>Created</th><th></th></tr>` +
    jobs.map((j) => `<tr><td><a href="#/jobs/${esc(j.id)}">${esc(j.id.slice(0, 13))}…</a></td><td>${esc(j.task)}</td><td>${esc(j.queue)}</td>
      <td class="s-${esc(j.state)}">${esc(j.state)}</td><td>${j.attempts}/${j.max_attempts}</td><td>${bar(j.progress)}</td>
      <td>${when(j.created_at)}</td><td>${extra(j)}</td></tr>`).join("") + `</table>`;
}

async function overview() {
  const [queues, jobs] = await Promise.all([api("/v1/queues"), api("/v1/jobs?limit=20")]);
  const states = ["waiting", "scheduled", "queued", "running", "succeeded", "failed", "canceled"];
  view.innerHTML = `<h2>Queues</h2><table><tr><th>Queue</th>${states.map((s) => `<th>${s}</th>`).join("")}<th>Oldest queued</th><th>Limit</th></tr>` +
    queues.queues.map((q) => `<tr><td>${esc(q.name)}${q.paused ? " (paused)" : ""}</td>${states.map((s) => `<td>${q.counts[s] ?? 0}</td>`).join("")}
      <td>${q.oldest_queued_age == null ? "" : q.oldest_queued_age.toFixed(1) + " s"}</td><td>${q.max_depth ?? "∞"}</td></tr>`).join("") +
    `</table><h2>Recent jobs</h2>${jobRows(jobs.jobs)}`;
}

async function jobList() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const data = await api("/v1/jobs?" + new URLSearchParams({ limit: "50", ...Object.fromEntries(params) }));
  const next = data.next_cursor ? `<a href="#/jobs?${new URLSearchParams({ ...Object.fromEntries(params), cursor: data.next_cursor })}">Older →</a>` : "";
  view.innerHTML = `<h2>Jobs</h2>${jobRows(data.jobs)}${next}`;
}

async function deadLetters() {
  const data = await api("/v1/dead-letters?limit=100");
  view.innerHTML = `<h2>Dead letters</h2><p><button id="all">Redrive all</button></p>` +
    jobRows(data.jobs, (j) => `<button data-id="${esc(j.id)}">Redrive</button> <span class="muted">${esc(j.error?.type || "")}</span>`);
  view.querySelector("#all").onclick = async () => { await api("/v1/dead-letters:redrive", { method: "POST", body: "{}" }); render(); };
  view.querySelectorAll("button[data-id]").forEach((b) => { b.onclick = async () => { await api(`/v1/dead-letters/${b.dataset.id}:redrive`, { method: "POST" }); render(); }; });
}

async function jobDetail(id) {
  const draw = async () => {
    const j = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    const cancel = ["succeeded", "failed", "canceled"].includes(j.state) ? "" : `<button id="cancel">Cancel</button>`;
    view.innerHTML = `<h2>Job ${esc(j.id)}</h2><p>${esc(j.task)} on <b>${esc(j.queue)}</b> — <span class="s-${esc(j.state)}">${esc(j.state)}</span>
      (${esc(j.status)}), attempt ${j.attempts}/${j.max_attempts}${j.queue_position != null ? `, position ${j.queue_position}` : ""} ${cancel}</p>
      <p>${bar(j.progress)}</p>
      ${j.artifacts.length ? `<p>Files: ${j.artifacts.map((a) => `<a href="${esc(a.url)}">${esc(a.name)}</a> (${a.size} B)`).join(", ")}</p>` : ""}
      <h3>Arguments</h3><pre>${esc(JSON.stringify(j.args, null, 2))}</pre>
      ${j.result != null ? `<h3>Result</h3><pre>${esc(JSON.stringify(j.result, null, 2))}</pre>` : ""}
      ${j.error ? `<h3>Error</h3><pre>${esc(JSON.stringify(j.error, null, 2))}</pre>` : ""}
      <h3>Events</h3><table id="events"><tr><th>#</th><th>At</th><th>Event</th><th>State</th><th>Data</th></tr>${events.join("")}</table>`;
    const c = view.querySelector("#cancel");
    if (c) c.onclick = async () => { await api(`/v1/jobs/${encodeURIComponent(id)}:cancel`, { method: "POST" }); draw(); };
  };
  const events = [];
  await draw();
  stream = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
  const onEvent = (e) => {
    const ev = JSON.parse(e.data);
    events.push(`<tr><td>${ev.seq}</td><td>${when(ev.at)}</td><td>${esc(ev.type)}</td><td class="s-${esc(ev.state)}">${esc(ev.state)}</td><td>${esc(JSON.stringify(ev.data))}</td></tr>`);
    draw();
    if (ev.type !== "progress" && ["succeeded", "failed", "canceled"].includes(ev.state)) stream.close();
  };
  for (const t of ["enqueued", "state", "progress", "artifact"]) stream.addEventListener(t, onEvent);
}

async function render() {
  if (stream) { stream.close(); stream = null; }
  clearInterval(timer);
  const hash = location.hash || "#/";
  try {
    if (hash.startsWith("#/jobs/")) return await jobDetail(decodeURIComponent(hash.slice(7)));
    if (hash.startsWith("#/jobs")) await jobList();
    else if (hash.startsWith("#/dead")) await deadLetters();
    else await overview();
    timer = setInterval(() => { if (!document.hidden) refresh(); }, 3000);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    view.innerHTML = `<p class="warn">${esc(err.message)}</p>`;
  }
}
async function refresh() {
  const hash = location.hash || "#/";
  try {
    if (hash.startsWith("#/dead")) await deadLetters();
    else if (hash.startsWith("#/jobs")) await jobList();
    else await overview();
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) { /* keep the last view */ }
}
window.addEventListener("hashchange", render);
render();
