// The live monitor: polls one JSON endpoint every second and redraws; commands go
// through the same API (and so the same services and permissions) as every tool.
"use strict";

const body = document.body;
const canOperate = body.dataset.canOperate === "1";
const canAdminister = body.dataset.canAdminister === "1";
const timeZone = body.dataset.timeZone || "UTC";
const dataUrl = body.dataset.dataUrl;
const REFRESH_MS = 1000;
const PREFERRED_CURRENCY = "EUR";

const view = { spool: "", status: "", cursor: "", cursorDirection: "" };
const charts = new Map();

const JOB_COMMANDS = {
  start: ["Waiting", "Pause"],
  pause: ["Waiting", "Disabled", "Running"],
  reset: ["Error", "Zombie"],
  disable: ["Waiting", "Pause", "Error"],
  enable: ["Disabled"],
};

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function formatter(options) {
  return new Intl.DateTimeFormat("sv-SE", { timeZone, hour12: false, ...options });
}
const dateTimeFormat = formatter({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });

function showTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "";
}

// "MM-DD HH:MM": dense enough for the batch panel.
function shortTime(iso) {
  return showTime(iso).slice(5, 16);
}

// The offset of the portal's time zone at an instant, in milliseconds.
function zoneOffset(instantMs) {
  const parts = Object.fromEntries(dateTimeFormat.formatToParts(new Date(instantMs)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

// A wall-clock time typed in the picker (portal time zone) as an ISO-8601 UTC instant.
function zonedToIso(local) {
  const [date, time] = local.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi, s] = (time + ":00").split(":").map(Number);
  const guess = Date.UTC(y, mo - 1, d, h, mi, s || 0);
  let instant = guess - zoneOffset(guess);
  instant = guess - zoneOffset(instant);
  return new Date(instant).toISOString();
}

function isoToZonedInput(iso) {
  return dateTimeFormat.format(new Date(iso)).replace(" ", "T");
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function button(label, handler) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.command = label;
  b.addEventListener("click", handler);
  return b;
}

function toast(message, bad) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ""; }, 4000);
}

async function post(url, payload) {
  const answer = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(payload || {}),
  });
  let data = {};
  try { data = await answer.json(); } catch (e) { data = {}; }
  if (!answer.ok) {
    const detail = data.detail || data.error || JSON.stringify(data);
    toast(`${answer.status}: ${detail}`, true);
  } else {
    toast("done");
  }
  refresh();
  return answer.ok;
}

function askText(label, initial) {
  const dialog = document.getElementById("text-dialog");
  document.getElementById("text-label").textContent = label;
  const input = document.getElementById("text-input");
  input.value = initial || "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? input.value : null), { once: true });
  });
}

function askTime(initialIso) {
  const dialog = document.getElementById("schedule-dialog");
  const input = document.getElementById("schedule-input");
  input.value = initialIso ? isoToZonedInput(initialIso) : "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" && input.value ? zonedToIso(input.value) : null), { once: true });
  });
}

function jobActions(job) {
  const td = document.createElement("td");
  td.className = "actions";
  const url = (command) => `/api/v1/jobs/${job.id}/${command}/`;
  for (const [command, allowed] of Object.entries(JOB_COMMANDS)) {
    if (allowed.includes(job.status)) td.append(button(command, () => post(url(command))));
  }
  if (["Waiting", "Pause", "Error", "Disabled"].includes(job.status)) {
    td.append(button("schedule", async () => {
      const at = await askTime(job.timestamp);
      if (at) post(url("schedule"), { timestamp: at });
    }));
  }
  td.append(button("comment", async () => {
    const text = await askText("Comment", job.comment);
    if (text !== null) post(url("comment"), { comment: text });
  }));
  return td;
}

function renderJobs(jobs) {
  const tbody = document.querySelector("#jobs tbody");
  const rows = jobs.rows.map((job) => {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    const status = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = `status status-${job.status}`;
    badge.textContent = job.status;
    status.append(badge);
    tr.append(cell(job.id, "num"), cell(job.spool), cell(job.generation, "num"), cell(job.state, "num"),
      cell(job.attempt, "num"), cell(job.type), status, cell(showTime(job.timestamp)), cell(job.comment, "comment"));
    if (canOperate) tr.append(jobActions(job));
    return tr;
  });
  tbody.replaceChildren(...rows);
  document.getElementById("jobs-count").textContent = jobs.rows.length ? `${jobs.rows.length} shown` : "none";
  document.getElementById("older").disabled = !jobs.older;
  document.getElementById("newer").disabled = !jobs.newer;
  view.older = jobs.older;
  view.newer = jobs.newer;
  const select = document.getElementById("filter-spool");
  const known = new Set([...select.options].map((o) => o.value));
  for (const spool of jobs.spools) {
    if (!known.has(spool)) select.append(new Option(spool, spool));
  }
}

function renderBatches(batches) {
  const rows = batches.map((b) => {
    const tr = document.createElement("tr");
    tr.append(cell(b.tenant), cell(b.config), cell(b.state, `state-${b.state}`),
      cell(`${shortTime(b.window_start)} → ${shortTime(b.window_end)}`), cell(shortTime(b.sla)),
      cell((b.missing_sources || []).join(", ")));
    return tr;
  });
  document.querySelector("#batches tbody").replaceChildren(...rows);
  document.getElementById("batches-count").textContent = String(batches.length);
}

function taskActions(task) {
  const td = document.createElement("td");
  td.className = "actions";
  const url = (action) => `/api/v1/scheduler-tasks/${task.id}/${action}/`;
  if (task.state === "DISABLED" || task.state === "INACTIVE") td.append(button("enable", () => post(url("enable"))));
  if (task.state !== "DISABLED") td.append(button("disable", () => post(url("disable"))));
  if (["ACTIVE", "ERROR"].includes(task.state)) {
    td.append(button("suspend", async () => {
      const reason = await askText("Reason for suspending", "");
      if (reason) post(url("suspend"), { reason });
    }));
  }
  if (task.state === "SUSPENDED") td.append(button("resume", () => post(url("resume"))));
  if (["ACTIVE", "ERROR"].includes(task.state)) td.append(button("run-now", () => post(url("run-now"))));
  return td;
}

function renderTasks(tasks) {
  const rows = tasks.map((t) => {
    const tr = document.createElement("tr");
    tr.append(cell(t.name), cell(t.subtype), cell(t.state, `state-${t.state}`), cell(showTime(t.next_timeout_at)),
      cell(t.last_error, "error"));
    if (canOperate) tr.append(taskActions(t));
    return tr;
  });
  document.querySelector("#tasks tbody").replaceChildren(...rows);
}

function renderOutbox(outbox) {
  document.getElementById("outbox-pending").textContent = outbox.pending;
  document.getElementById("outbox-age").textContent =
    outbox.oldest_pending_age_seconds === null ? "–" : `${Math.round(outbox.oldest_pending_age_seconds)} s`;
  document.getElementById("outbox-failed").textContent = outbox.failed_count;
  document.getElementById("outbox-invalid").textContent = outbox.invalid_count;
  const rows = outbox.failed.map((m) => {
    const tr = document.createElement("tr");
    tr.append(cell(m.kind), cell(m.dedupe_key), cell(m.attempts, "num"), cell(m.last_error, "error"));
    return tr;
  });
  document.querySelector("#failed-messages tbody").replaceChildren(...rows);
}

function renderHeartbeat(heartbeat, scheduler, now) {
  document.getElementById("clock").textContent = showTime(now);
  document.getElementById("heartbeat").textContent = heartbeat.last_tick_at ? showTime(heartbeat.last_tick_at) : "never";
  const banner = document.getElementById("stale-banner");
  banner.hidden = !heartbeat.stale;
  banner.textContent = heartbeat.stale
    ? `Heartbeat is stale: last tick ${heartbeat.last_tick_at ? showTime(heartbeat.last_tick_at) : "never"}. Scheduler tasks are not running.`
    : "";
  document.getElementById("shutdown-banner").hidden = !scheduler.shutdown;
}

// One chart per interface; its currency is picked in the chart's header (values of
// different currencies are never added up).
function renderCharts(series) {
  if (typeof Chart === "undefined") return;
  const container = document.getElementById("charts");
  const byInterface = new Map();
  for (const item of series) {
    if (!byInterface.has(item.interface)) byInterface.set(item.interface, new Map());
    byInterface.get(item.interface).set(item.currency, item.points);
  }
  for (const [code, currencies] of byInterface) {
    let entry = charts.get(code);
    if (!entry) {
      const box = document.createElement("div");
      box.className = "chart-box";
      box.dataset.interface = code;
      const title = document.createElement("h3");
      title.textContent = code + " ";
      const select = document.createElement("select");
      select.className = "currency";
      title.append(select);
      const holder = document.createElement("div");
      holder.className = "chart-canvas";
      const canvas = document.createElement("canvas");
      holder.append(canvas);
      box.append(title, holder);
      container.append(box);
      const chart = new Chart(canvas, {
        type: "line",
        data: { labels: [], datasets: [
          { label: "pending", data: [], borderColor: "#a86400", tension: 0.2, pointRadius: 0 },
          { label: "completed", data: [], borderColor: "#1e7b43", tension: 0.2, pointRadius: 0 },
        ] },
        options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } } } },
      });
      entry = { chart, select, currencies };
      select.addEventListener("change", () => drawChart(entry));
      charts.set(code, entry);
    }
    entry.currencies = currencies;
    const known = [...entry.select.options].map((o) => o.value);
    for (const currency of [...currencies.keys()].sort()) {
      if (!known.includes(currency)) entry.select.append(new Option(currency, currency));
    }
    if (!known.length && currencies.has(PREFERRED_CURRENCY)) entry.select.value = PREFERRED_CURRENCY;
    drawChart(entry);
  }
}

function drawChart(entry) {
  const points = entry.currencies.get(entry.select.value) || [];
  entry.chart.data.labels = points.map((p) => showTime(p.t).slice(11, 16));
  entry.chart.data.datasets[0].data = points.map((p) => Number(p.pending_value));
  entry.chart.data.datasets[1].data = points.map((p) => Number(p.completed_value));
  entry.chart.update("none");
}

let inFlight = false;
async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const params = new URLSearchParams();
    if (view.spool) params.set("spool", view.spool);
    if (view.status) params.set("status", view.status);
    if (view.cursor) params.set(view.cursorDirection, view.cursor);
    const answer = await fetch(`${dataUrl}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (answer.status === 401 || answer.status === 403) { window.location.reload(); return; }
    const data = await answer.json();
    renderHeartbeat(data.heartbeat, data.scheduler, data.now);
    renderJobs(data.jobs);
    renderBatches(data.batches);
    renderTasks(data.tasks);
    renderOutbox(data.outbox);
    renderCharts(data.charts);
  } catch (error) {
    toast(`refresh failed: ${error}`, true);
  } finally {
    inFlight = false;
  }
}

function setFilter(key, value) {
  view[key] = value;
  view.cursor = "";
  refresh();
}

document.getElementById("filter-spool").addEventListener("change", (e) => setFilter("spool", e.target.value));
document.getElementById("filter-status").addEventListener("change", (e) => setFilter("status", e.target.value));
document.getElementById("older").addEventListener("click", () => { view.cursor = view.older; view.cursorDirection = "before"; refresh(); });
document.getElementById("newer").addEventListener("click", () => { view.cursor = view.newer; view.cursorDirection = "after"; refresh(); });
if (canAdminister) {
  for (const b of document.querySelectorAll("[data-scheduler]")) {
    b.addEventListener("click", () => post(`/api/v1/scheduler/${b.dataset.scheduler}/`));
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
