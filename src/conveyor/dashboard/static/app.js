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
  return `<progress max="100" value="${Math.round(p.fraction * 100)}"></progress> ${Math.round(p.fraction * 100)} % ${esc(p.message || "")}`;
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
  view.innerHTML = `<h2>Queues</h2><table><tr><th>Queue</th>${states.map((s) => `<th>${s}</th>`).join("")}<th>Oldest queued</th><th>Done/min</th><th>Limit</th><th>Max runtime</th></tr>` +
    queues.queues.map((q) => `<tr><td>${esc(q.name)}${q.paused ? " (paused)" : ""}</td>${states.map((s) => `<td>${q.counts[s] ?? 0}</td>`).join("")}
      <td>${q.oldest_queued_age == null ? "" : q.oldest_queued_age.toFixed(1) + " s"}</td><td>${q.throughput_per_min ?? ""}</td><td>${q.max_depth ?? "∞"}</td>
      <td>${q.max_runtime == null ? "" : esc(q.max_runtime) + " s → " + esc(q.overflow_to)}</td></tr>`).join("") +
    `</table><h2>Recent jobs</h2>${jobRows(jobs.jobs)}`;
}

// Periodic jobs and their next run (engine clock), built with textContent only.
async function schedules() {
  const data = await api("/v1/schedules");
  const head = el("tr", {}, ...["Schedule", "Task", "When", "Next run", "Catch up"].map((h) => el("th", { text: h })));
  const rows = data.schedules.map((s) => el("tr", { class: "schedule" },
    el("td", { text: s.name }), el("td", { text: s.task }),
    el("td", { text: s.cron ? `${s.cron} (${s.tz})` : `every ${s.every} s` }),
    el("td", { class: "next-run", text: new Date(s.next_run * 1000).toLocaleString() }),
    el("td", { text: s.catch_up ? "yes" : "" })));
  view.replaceChildren(el("h2", { text: "Schedules" }),
    data.schedules.length ? el("table", {}, head, ...rows) : el("p", { class: "muted", text: "No schedules: declare one with @app.periodic(...)." }));
}

async function jobList() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const data = await api("/v1/jobs?" + new URLSearchParams({ limit: "50", ...Object.fromEntries(params) }));
  const next = data.next_cursor ? `<a href="#/jobs?${new URLSearchParams({ ...Object.fromEntries(params), cursor: data.next_cursor })}">Older →</a>` : "";
  view.innerHTML = `<h2>Jobs</h2>${jobRows(data.jobs)}${next}`;
}

// Build elements from job data with textContent only: job data never goes through innerHTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = String(v ?? "");
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}
function percent(fraction) { return `${Math.round(fraction * 100)} %`; }
function progressNode(p) {
  const span = el("span", { class: "progress" });
  if (p && p.fraction != null) span.append(el("progress", { max: "100", value: String(Math.round(p.fraction * 100)) }), " ", percent(p.fraction), " ");
  if (p && p.message) span.append(p.message);
  return span;
}
function errorNode(error) {
  if (!error) return null;
  const box = el("div", { class: "error" }, el("b", { text: error.type || "Error" }), error.message ? ": " : "", error.message || "");
  if (error.traceback) box.append(el("pre", { class: "traceback", text: error.traceback }));
  return box;
}
function stamp() { document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString(); }

async function deadLetters() {
  const data = await api("/v1/dead-letters?limit=100");
  const all = el("button", { id: "all", text: "Redrive all" });
  const table = el("table", { class: "dead" }, el("tr", {}, ...["Job", "Task", "Queue", "Attempts", "Failed", "Error", ""].map((h) => el("th", { text: h }))));
  for (const j of data.jobs) {
    const link = el("a", { href: `#/jobs/${encodeURIComponent(j.id)}`, text: j.id.slice(0, 13) + "…" });
    const redrive = el("button", { "data-id": j.id, text: "Redrive" });
    redrive.onclick = async () => { await api(`/v1/dead-letters/${encodeURIComponent(j.id)}:redrive`, { method: "POST" }); render(); };
    table.append(el("tr", {}, el("td", {}, link), el("td", { text: j.task }), el("td", { text: j.queue }),
      el("td", { text: `${j.attempts}/${j.max_attempts}` }), el("td", { text: when(j.finished_at || j.updated_at) }),
      el("td", { class: "error-cell" }, errorNode(j.error)), el("td", {}, redrive)));
  }
  all.onclick = async () => {
    if (!data.jobs.length) return;
    const n = data.jobs.length;
    if (!confirm(`Redrive all dead letters (${n}${data.next_cursor ? "+" : ""} jobs)? They run again.`)) return;
    await api("/v1/dead-letters:redrive", { method: "POST", body: "{}" });
    render();
  };
  view.replaceChildren(el("h2", { text: "Dead letters" }), el("p", {}, all),
    data.jobs.length ? table : el("p", { class: "muted", text: "No dead letters." }));
}

// Worker nodes of the whole fleet, from the engine's registry (text only, never innerHTML).
function ago(seconds) { return seconds < 60 ? `${seconds.toFixed(1)} s ago` : `${Math.round(seconds / 60)} min ago`; }
async function workers() {
  const data = await api("/v1/workers");
  const head = ["Worker", "Status", "Host", "PID", "Queues", "In flight", "Executors", "Last beat", "Version"];
  const table = el("table", { class: "workers" }, el("tr", {}, ...head.map((h) => el("th", { text: h }))));
  for (const w of data.workers) {
    const status = w.alive ? (w.state || "running") : "dead";
    table.append(el("tr", {}, el("td", { text: w.worker_id }), el("td", { class: w.alive ? "s-running" : "s-failed", text: status }),
      el("td", { text: w.host }), el("td", { text: w.pid }), el("td", { text: (w.queues || []).join(", ") }),
      el("td", { text: w.in_flight }), el("td", { text: w.executors }), el("td", { text: ago(w.silent_for) }),
      el("td", { text: w.version })));
  }
  view.replaceChildren(el("h2", { text: "Workers" }),
    el("p", { class: "muted", text: `${data.alive} alive, ${data.dead} dead (a node is dead after missing 3 beats)` }),
    data.workers.length ? table : el("p", { class: "muted", text: "No worker nodes registered." }));
}

// The job view: one GET, then each SSE event updates it in place. Only a change of state or a
// new artifact (the status body has things the event does not: result, error, artifact sizes)
// fetches the job again.
async function jobDetail(id) {
  let j = await api(`/v1/jobs/${encodeURIComponent(id)}`);
  const events = el("table", { id: "events" }, el("tr", {}, ...["#", "At", "Event", "State", "Data"].map((h) => el("th", { text: h }))));
  const head = el("p"), prog = el("p"), body = el("div");
  const draw = () => {
    const state = el("span", { class: `s-${j.state}`, text: j.state });
    head.replaceChildren(`${j.task} on `, el("b", { text: j.queue }), " — ", state,
      ` (${j.status}), attempt ${j.attempts}/${j.max_attempts}${j.queue_position != null ? `, position ${j.queue_position}` : ""} `);
    if (!["succeeded", "failed", "canceled"].includes(j.state)) {
      const cancel = el("button", { id: "cancel", text: "Cancel" });
      cancel.onclick = async () => { j = await api(`/v1/jobs/${encodeURIComponent(id)}:cancel`, { method: "POST" }); draw(); };
      head.append(cancel);
    }
    prog.replaceChildren(progressNode(j.progress));
    const parts = [];
    if (j.workflow_id) {
      parts.push(el("p", { class: "workflow" }, "Step ", el("b", { text: j.step || "(unnamed)" }), " of workflow ",
        el("a", { href: `#/workflows/${encodeURIComponent(j.workflow_id)}`, id: "workflow-link", text: j.workflow_id })));
    }
    if (j.artifacts.length) {
      const files = el("p", {}, "Files: ");
      j.artifacts.forEach((a, i) => files.append(i ? ", " : "", el("a", { href: a.url, text: a.name }), ` (${a.size} B)`));
      parts.push(files);
    }
    parts.push(el("h3", { text: "Arguments" }), el("pre", { text: JSON.stringify(j.args, null, 2) }));
    if (j.result != null) parts.push(el("h3", { text: "Result" }), el("pre", { text: JSON.stringify(j.result, null, 2) }));
    if (j.error) parts.push(el("h3", { text: "Error" }), errorNode(j.error));
    body.replaceChildren(...parts);
    stamp();
  };
  view.replaceChildren(el("h2", { text: `Job ${j.id}` }), head, prog, body, el("h3", { text: "Events" }), events);
  draw();
  const source = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
  stream = source;
  let pending = null;
  const refetch = () => {  // coalesced: a burst of state events costs one GET
    pending = pending || api(`/v1/jobs/${encodeURIComponent(id)}`).then((fresh) => { j = fresh; draw(); }).catch(() => {}).finally(() => { pending = null; });
  };
  const onEvent = (e) => {
    const ev = JSON.parse(e.data);
    const data = ev.data || {};
    const shown = ev.type === "progress"
      ? [data.fraction != null ? percent(data.fraction) : "", data.message || ""].filter(Boolean).join(" ")
      : JSON.stringify(data);
    events.append(el("tr", {}, el("td", { text: ev.seq }), el("td", { text: when(ev.at) }), el("td", { text: ev.type }),
      el("td", { class: `s-${ev.state}`, text: ev.state }), el("td", {}, ev.type === "progress" ? shown : el("code", { text: shown }))));
    // history the first GET already reflects (the stream replays it) only fills the table
    const isNew = !j.updated_at || Date.parse(ev.at) > Date.parse(j.updated_at);
    if (!isNew) stamp();
    else if (ev.type === "progress") {
      j.progress = { fraction: data.fraction ?? null, message: data.message ?? null };
      draw();
    } else if (ev.state !== j.state || ev.type === "artifact") {
      j.state = ev.state; j.status = ev.status;
      draw();
      refetch();
    } else stamp();
    if (ev.type !== "progress" && ["succeeded", "failed", "canceled"].includes(ev.state)) source.close();
  };
  for (const t of ["enqueued", "state", "progress", "artifact"]) source.addEventListener(t, onEvent);
}

// The workflow view: the steps in layers (a step sits one layer right of its deepest dependency),
// dependency edges drawn as SVG lines, an aggregate progress bar; follows the workflow's stream.
const SVG = "http://www.w3.org/2000/svg";
const MAX_DRAWN_EDGES = 400;
async function workflowDetail(id) {
  const path = `/v1/workflows/${encodeURIComponent(id)}`;
  let w = await api(path);
  const head = el("p", { id: "workflow-head" }), graph = el("div", { class: "dag", id: "dag" });
  const failed = el("div", { id: "failed" });
  const draw = () => {
    const fraction = w.progress ?? 0;
    head.replaceChildren(el("span", { class: `s-${w.state}`, id: "workflow-state", text: w.state }), ` (${w.status}) — ${w.steps.length} steps, `,
      el("progress", { max: "100", value: String(Math.round(fraction * 100)), id: "workflow-progress" }), " ", percent(fraction), " ",
      el("span", { class: "muted", text: Object.entries(w.counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ") }), " ");
    if (!["succeeded", "failed", "canceled"].includes(w.state)) {
      const cancel = el("button", { id: "cancel-workflow", text: "Cancel workflow" });
      cancel.onclick = async () => {
        if (!confirm("Cancel every unfinished step of this workflow?")) return;
        w = await api(`${path}:cancel`, { method: "POST" }); draw();
      };
      head.append(cancel);
    }
    const names = Object.fromEntries(w.steps.map((s) => [s.id, s.step || s.id.slice(0, 13) + "…"]));
    const layers = [];
    for (const s of w.steps) (layers[s.layer] ||= []).push(s);
    const columns = layers.map((steps, n) => el("div", { class: "layer", "data-layer": String(n) }, ...steps.map((s) => {
      const box = el("div", { class: "step", id: `step-${s.id}`, "data-step": s.step || "", "data-state": s.state },
        el("a", { href: `#/jobs/${encodeURIComponent(s.id)}`, class: "step-name", text: s.step || s.id.slice(0, 13) + "…" }),
        el("div", { class: "muted", text: s.task }), el("div", { class: `s-${s.state}`, text: s.state }), progressNode(s.progress));
      if (s.depends_on.length) box.append(el("div", { class: "deps muted", text: "after " + s.depends_on.map((d) => names[d] || d.slice(0, 13)).join(", ") }));
      if (s.error) box.append(el("div", { class: "error" }, el("b", { text: s.error.type || "Error" }), ": ", s.error.message || ""));
      return box;
    })));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "edges");
    graph.replaceChildren(svg, ...columns);
    failed.replaceChildren(...(w.failed_steps.length ? [el("h3", { text: "Failed steps" }),
      ...w.failed_steps.map((fid) => el("p", {}, el("a", { href: `#/jobs/${encodeURIComponent(fid)}`, text: names[fid] || fid })))] : []));
    edges(svg, w.steps);
    stamp();
  };
  view.replaceChildren(el("h2", { text: `Workflow ${w.id}` }), head, graph, failed);
  draw();
  const source = new EventSource(`${path}/events`);
  stream = source;
  let pending = null;
  const refetch = () => {  // coalesced: a burst of step events costs one GET
    pending = pending || api(path).then((fresh) => { w = fresh; draw(); }).catch(() => {}).finally(() => { pending = null; });
  };
  source.addEventListener("step", refetch);
  source.addEventListener("workflow", (e) => {
    const data = JSON.parse(e.data);
    if (["succeeded", "failed", "canceled"].includes(data.state)) source.close();
    refetch();
  });
}
function edges(svg, steps) {
  const box = svg.parentNode.getBoundingClientRect();
  svg.setAttribute("width", String(svg.parentNode.scrollWidth));
  svg.setAttribute("height", String(svg.parentNode.scrollHeight));
  const marker = document.createElementNS(SVG, "marker"), tip = document.createElementNS(SVG, "path"), defs = document.createElementNS(SVG, "defs");
  for (const [k, v] of Object.entries({ id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto" })) marker.setAttribute(k, v);
  tip.setAttribute("d", "M 0 0 L 10 5 L 0 10 z");
  tip.setAttribute("class", "arrow");
  marker.append(tip); defs.append(marker); svg.append(defs);
  let drawn = 0;
  for (const s of steps) for (const d of s.depends_on) {
    const from = document.getElementById(`step-${d}`), to = document.getElementById(`step-${s.id}`);
    if (!from || !to || ++drawn > MAX_DRAWN_EDGES) continue;
    const a = from.getBoundingClientRect(), b = to.getBoundingClientRect();
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", String(a.right - box.left)); line.setAttribute("y1", String(a.top + a.height / 2 - box.top));
    line.setAttribute("x2", String(b.left - box.left)); line.setAttribute("y2", String(b.top + b.height / 2 - box.top));
    line.setAttribute("class", "edge");
    line.setAttribute("marker-end", "url(#arrow)");
    svg.append(line);
  }
}

async function render() {
  if (stream) { stream.close(); stream = null; }
  clearInterval(timer);
  const hash = location.hash || "#/";
  try {
    if (hash.startsWith("#/jobs/")) return await jobDetail(decodeURIComponent(hash.slice(7)));
    if (hash.startsWith("#/workflows/")) return await workflowDetail(decodeURIComponent(hash.slice(12)));
    if (hash.startsWith("#/jobs")) await jobList();
    else if (hash.startsWith("#/dead")) await deadLetters();
    else if (hash.startsWith("#/workers")) await workers();
    else if (hash.startsWith("#/schedules")) await schedules();
    else await overview();
    timer = setInterval(() => { if (!document.hidden) refresh(); }, 3000);
    stamp();
  } catch (err) {
    view.replaceChildren(el("p", { class: "warn", text: err.message }));
  }
}
// Lists poll every 3 s (the job view follows its event stream instead); "updated" says when the
// view last matched the server, and says so when a refresh failed.
async function refresh() {
  const hash = location.hash || "#/";
  if (hash.startsWith("#/jobs/") || hash.startsWith("#/workflows/")) return;
  try {
    if (hash.startsWith("#/dead")) await deadLetters();
    else if (hash.startsWith("#/jobs")) await jobList();
    else if (hash.startsWith("#/workers")) await workers();
    else if (hash.startsWith("#/schedules")) await schedules();
    else await overview();
    stamp();
  } catch (err) {
    const updated = document.getElementById("updated");
    if (!updated.textContent.includes("refresh failed")) updated.textContent += " (refresh failed)";
  }
}
window.addEventListener("hashchange", render);
document.addEventListener("visibilitychange", () => { if (!document.hidden && timer) refresh(); });
render();
