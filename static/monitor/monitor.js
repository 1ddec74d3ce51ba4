// The operator console (DOMAIN §6): what needs an eye first, rows updated in place, every command
// through the REST API (so the same services, permissions and audit as the CLI and the admin).
"use strict";

import {
  ago, ask, button, canAdminister, canOperate, cell, command, generation, getJson, reasonPrefill, say, setActions, setClass, setText,
  show, showTime, syncRows, takeReason, whenNotPressed,
} from "./lib.js";
import { renderCharts } from "./charts.js";
import { closeDetail, openDetail, refreshDetail, renderAudit } from "./detail.js";
import { renderAlerts, renderBatches, renderCutoffs, renderHeld, renderTasks, renderTimeline } from "./panels.js";

const dataUrl = document.body.dataset.dataUrl;
const REFRESH_MS = 1000;
const JOB_COMMANDS = ["start", "pause", "reset", "disable", "enable", "schedule", "comment"];

// What the page shows, kept in the URL so a view can be bookmarked and sent.
const params = new URLSearchParams(window.location.search);
export const view = {
  spool: params.get("spool") || "",
  status: params.get("status") || "",
  before: params.get("before") || "",
  after: params.get("after") || "",
  job: params.get("job") || "",
  audit: params.get("audit") === "1",
};
let spoolIds = new Map();

export function saveView() {
  const next = new URLSearchParams();
  for (const key of ["spool", "status", "before", "after", "job"]) if (view[key]) next.set(key, view[key]);
  if (view.audit) next.set("audit", "1");
  const query = next.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

export function jobName(job) {
  return `job ${job.id} (${job.spool}/${generation(job.generation)})`;
}

export const PAST = { start: "started", pause: "paused", reset: "reset", disable: "disabled", enable: "enabled", schedule: "rescheduled", comment: "commented" };

function jobDone(job, verb) {
  return (data) => {
    let text = `${verb[0].toUpperCase()}${verb.slice(1)} ${jobName(job)}: now ${data.status}`;
    if (data.stop_flag && data.status === "Running") text += ", pausing when its attempt ends";
    if (data.timestamp && data.status === "Waiting") text += `, due ${showTime(data.timestamp)}`;
    if (data.note) text += `. ${data.note}`;
    return text + ".";
  };
}

// --- job commands ------------------------------------------------------------------------------

export async function jobCommand(job, name) {
  const url = (c) => `/api/v1/jobs/${job.id}/${c}/`;
  if (["start", "pause", "reset", "enable"].includes(name)) {
    await command(url(name), { reason: takeReason() }, `${name} ${jobName(job)}`, jobDone(job, PAST[name]));
  } else if (name === "disable") {
    const answer = await ask({
      title: `Disable ${jobName(job)}?`, text: "A disabled job is not started until it is enabled and started again.",
      reason: "required", reasonPrefill: reasonPrefill(), choices: [{ label: "Disable", value: "ok" }],
    });
    if (answer) await command(url("disable"), { reason: answer.reason }, `disable ${jobName(job)}`, jobDone(job, "disabled"));
  } else if (name === "schedule") {
    await scheduleJob(job, url);
  } else if (name === "comment") {
    const answer = await ask({ title: `Comment on ${jobName(job)}`, comment: job.comment, reason: "optional", reasonPrefill: reasonPrefill() });
    if (answer) await command(url("comment"), { comment: answer.comment, reason: answer.reason }, `comment ${jobName(job)}`, jobDone(job, "commented"));
  }
  refresh();
}

// `schedule` changes the time only (DOMAIN §3); an Error job runs again only once reset, a paused one
// once started, so the dialog offers that in the same step (reset or start with a time, DOMAIN §5).
async function scheduleJob(job, url) {
  const choices = [{ label: "Change the timestamp only", value: "schedule", needsTime: true }];
  let note = "";
  if (job.status === "Error") {
    choices.unshift({ label: "Reset to run at this time", value: "reset", needsTime: true });
    note = "A job in Error never runs by itself: changing its timestamp keeps it in Error. Reset it with a time to run it again then.";
  } else if (job.status === "Pause") {
    choices.unshift({ label: "Start at this time", value: "start", needsTime: true });
    note = "A paused job runs only once started: start it with a time to run it then.";
  } else if (job.status === "Disabled") {
    note = "A disabled job keeps its status: enable it, then start it, for it to run.";
  }
  const answer = await ask({
    title: `New time for ${jobName(job)}`, text: `It is ${job.status}, due ${showTime(job.timestamp)}.`, time: job.timestamp,
    timeRequired: true, reason: "optional", reasonPrefill: reasonPrefill(), note, choices,
  });
  if (!answer) return;
  await command(url(answer.choice), { timestamp: answer.time, reason: answer.reason }, `${answer.choice} ${jobName(job)}`,
    jobDone(job, PAST[answer.choice]));
}

// --- job rows (the attention list and the table share them) -----------------------------------------

function buildJobRow(job) {
  const tr = document.createElement("tr");
  tr.dataset.jobId = job.id;
  const id = cell(tr, "num id", "ID");
  const link = document.createElement("a");
  link.href = `?job=${job.id}`;
  link.addEventListener("click", (event) => { event.preventDefault(); openDetail(tr.item.id); });
  id.append(link);
  cell(tr, "spool", "Spool");
  cell(tr, "num generation", "Generation");
  cell(tr, "num state", "State");
  cell(tr, "num attempt", "Attempt");
  cell(tr, "type", "Type");
  const status = cell(tr, "status-cell", "Status");
  const badge = document.createElement("span");
  const why = document.createElement("span");
  why.className = "why";
  status.append(badge, why);
  cell(tr, "timestamp", "Timestamp");
  cell(tr, "comment", "Comment");
  if (canOperate) {
    const actions = cell(tr, "actions");
    for (const name of JOB_COMMANDS) actions.append(button(name, () => jobCommand(tr.item, name)));
  }
  return tr;
}

function updateJobRow(tr, job) {
  const [id, spool, gen, state, attempt, type, status, timestamp, comment] = tr.cells;
  setText(id.firstChild, job.id);
  setText(spool, job.spool);
  setText(gen, generation(job.generation));
  setText(state, job.state);
  setText(attempt, job.attempt);
  setText(type, job.type);
  setClass(status.firstChild, `status status-${job.status}`);
  setText(status.firstChild, job.status);
  const why = job.stop_flag && job.status === "Running" ? "pause pending: stops after this attempt" : job.waiting_for ? `waiting for ${job.waiting_for}` : "";
  setText(status.lastChild, why);
  setText(timestamp, showTime(job.timestamp));
  setText(comment, job.comment);
  if (comment.title !== job.comment) comment.title = job.comment;
  if (canOperate) setActions(tr, new Set(job.commands));
}

function renderJobTable(tableId, rows) {
  return syncRows(document.querySelector(`#${tableId} tbody`), rows, (job) => job.id, buildJobRow, updateJobRow);
}

function renderCounts(counts, cap) {
  for (const chip of document.querySelectorAll("#counts .count-chip")) {
    const n = counts[chip.dataset.status] || 0;
    setText(chip.querySelector(".n"), n > cap ? `${cap}+` : n);
    chip.classList.toggle("zero", n === 0);
    chip.setAttribute("aria-pressed", String(view.status === chip.dataset.status));
  }
}

function renderAttention(attention) {
  renderJobTable("attention", attention.rows);
  setText(document.getElementById("attention-count"), attention.rows.length >= attention.limit ? `the newest ${attention.limit}` : attention.rows.length);
  show(document.getElementById("attention-empty"), attention.rows.length === 0);
  show(document.getElementById("attention"), attention.rows.length > 0);
}

function renderJobs(jobs) {
  const held = renderJobTable("jobs", jobs.rows);
  // Shown by visibility, not display: the note never changes the toolbar's height (nothing below moves).
  document.getElementById("jobs-held").classList.toggle("invisible", !held);
  setText(document.getElementById("jobs-count"), jobs.rows.length ? `${jobs.rows.length} shown` : "none");
  document.getElementById("older").disabled = !jobs.older;
  document.getElementById("newer").disabled = !jobs.newer;
  view.olderCursor = jobs.older;
  view.newerCursor = jobs.newer;
  const select = document.getElementById("filter-spool");
  spoolIds = new Map(jobs.spools.map((s) => [s.name, s.id]));
  const known = new Set([...select.options].map((o) => o.value));
  for (const spool of jobs.spools) if (!known.has(spool.name)) select.append(new Option(spool.enabled ? spool.name : `${spool.name} (disabled)`, spool.name));
  if (select.value !== view.spool) select.value = view.spool;
  const statusSelect = document.getElementById("filter-status");
  if (statusSelect.value !== view.status) statusSelect.value = view.status;
  const spoolBar = document.getElementById("spool-actions");
  if (spoolBar) {
    show(spoolBar, Boolean(view.spool));
    setText(document.getElementById("spool-actions-name"), view.spool);
  }
}

// --- outbox, heartbeat, the scheduler switch ---------------------------------------------------------

function renderOutbox(outbox) {
  setText(document.getElementById("outbox-pending"), outbox.pending_capped ? `${outbox.pending}+` : outbox.pending);
  setText(document.getElementById("outbox-age"), outbox.oldest_pending_age_seconds === null ? "–" : ago(outbox.oldest_pending_age_seconds));
  setText(document.getElementById("outbox-failed"), outbox.failed_count);
  setText(document.getElementById("outbox-invalid"), outbox.invalid_count);
  show(document.getElementById("failed-messages"), outbox.failed.length > 0);
  syncRows(document.querySelector("#failed-messages tbody"), outbox.failed, (m) => m.id, (m) => {
    const tr = document.createElement("tr");
    cell(tr, "", "Kind"); cell(tr, "key", "Dedupe key"); cell(tr, "num", "Attempts"); cell(tr, "error", "Last error");
    return tr;
  }, (tr, m) => {
    const [kind, key, attempts, error] = tr.cells;
    setText(kind, m.kind); setText(key, m.dedupe_key); setText(attempts, m.attempts); setText(error, m.last_error);
  });
}

function renderHeartbeat(data) {
  setText(document.getElementById("clock"), showTime(data.now));
  const last = data.heartbeat.last_tick_at ? showTime(data.heartbeat.last_tick_at) : "never";
  setText(document.getElementById("heartbeat"), last);
  const stale = document.getElementById("stale-banner");
  show(stale, data.heartbeat.stale);
  setText(stale, data.heartbeat.stale ? `The heartbeat is stale: last tick ${last}. Scheduler tasks are not running.` : "");
  // An administrator is offered the switch that applies: shut down while running, resume while shut down.
  for (const b of document.querySelectorAll("[data-scheduler=shutdown]")) show(b, !data.scheduler.shutdown);
  for (const b of document.querySelectorAll("[data-scheduler=resume]")) show(b, data.scheduler.shutdown);
  const shutdown = document.getElementById("shutdown-banner");
  show(shutdown, data.scheduler.shutdown);
  setText(shutdown, data.scheduler.shutdown
    ? `The scheduler is shut down (by ${data.scheduler.changed_by || "?"} at ${showTime(data.scheduler.changed_at)}${data.scheduler.reason ? `: ${data.scheduler.reason}` : ""}): no job starts until an administrator resumes it.`
    : "");
}

async function schedulerCommand(name) {
  const url = `/api/v1/scheduler/${name}/`;
  if (name === "shutdown") {
    const answer = await ask({
      title: "Shut the scheduler down?", text: "No job is started until the scheduler is resumed; running jobs finish.",
      reason: "required", reasonPrefill: reasonPrefill(), choices: [{ label: "Shut down", value: "ok" }],
    });
    if (answer) await command(url, { reason: answer.reason }, "shut the scheduler down", () => "The scheduler is shut down: no job starts until it is resumed.");
  } else if (name === "resume") {
    await command(url, { reason: takeReason() }, "resume the scheduler", () => "The scheduler runs again.");
  } else {
    await command(url, { reason: takeReason() }, "reload the workflows",
      (data) => `Workflows reloaded: ${data.loaded.filter((l) => l.changed).map((l) => l.spool).join(", ") || "none changed"}.`);
  }
  refresh();
}

async function spoolCommand(name) {
  const spool = view.spool;
  const timed = ["start", "reset"].includes(name);
  const answer = await ask({
    title: `${name[0].toUpperCase()}${name.slice(1)} every job of spool ${spool} that allows it?`,
    text: "The command applies to each job of the spool whose status allows it; the others are left as they are.",
    time: timed ? null : undefined, note: timed ? "Without a time, now." : "",
    reason: "required", reasonPrefill: reasonPrefill(), choices: [{ label: `${name} all`, value: "ok" }],
  });
  if (!answer) return;
  await command(`/api/v1/spools/${spoolIds.get(spool)}/command/`, { command: name, reason: answer.reason, ...(answer.time ? { timestamp: answer.time } : {}) },
    `${name} the jobs of spool ${spool}`, (data) => `${PAST[name][0].toUpperCase()}${PAST[name].slice(1)} ${data.changed.length} job(s) of spool ${spool}: ${data.changed.join(", ")}.`);
  refresh();
}

// --- the refresh ---------------------------------------------------------------------------------

function render(data) {
  renderHeartbeat(data);
  renderCounts(data.counts, data.counts_cap);
  renderAttention(data.attention);
  renderAlerts(data.alerts);
  renderBatches(data.batches);
  renderHeld(data.held);
  renderTasks(data.tasks);
  renderCutoffs(data.cutoffs, data.now);
  renderTimeline(data.timeline);
  renderOutbox(data.outbox);
  renderJobs(data.jobs);
  renderCharts(data.charts);
}

let inFlight = false;
let failedOnce = false;
export async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const query = new URLSearchParams();
    for (const key of ["spool", "status", "before", "after"]) if (view[key]) query.set(key, view[key]);
    const data = await getJson(`${dataUrl}?${query}`);
    whenNotPressed(() => render(data));
    if (view.job) refreshDetail();
    if (failedOnce) { failedOnce = false; say("The console is connected again."); }
  } catch (error) {
    if (!failedOnce) say(`The console could not refresh: ${error.message}. It keeps trying.`, true);
    failedOnce = true;
  } finally {
    inFlight = false;
  }
}

function setFilter(key, value) {
  view[key] = value;
  view.before = view.after = "";
  saveView();
  refresh();
}

document.getElementById("filter-spool").addEventListener("change", (e) => setFilter("spool", e.target.value));
document.getElementById("filter-status").addEventListener("change", (e) => setFilter("status", e.target.value));
for (const chip of document.querySelectorAll("#counts .count-chip")) {
  chip.addEventListener("click", () => setFilter("status", view.status === chip.dataset.status ? "" : chip.dataset.status));
}
document.getElementById("older").addEventListener("click", () => { view.before = String(view.olderCursor); view.after = ""; saveView(); refresh(); });
document.getElementById("newer").addEventListener("click", () => { view.after = String(view.newerCursor); view.before = ""; saveView(); refresh(); });
for (const b of document.querySelectorAll("[data-spool-command]")) b.addEventListener("click", () => spoolCommand(b.dataset.spoolCommand));
if (canAdminister) {
  for (const b of document.querySelectorAll("[data-scheduler]")) b.addEventListener("click", () => schedulerCommand(b.dataset.scheduler));
}
document.getElementById("detail-close").addEventListener("click", closeDetail);
document.getElementById("audit-link").addEventListener("click", (event) => { event.preventDefault(); view.audit = true; saveView(); renderAudit(true); });
document.getElementById("audit-close").addEventListener("click", () => { view.audit = false; saveView(); renderAudit(false); });

refresh();
setInterval(refresh, REFRESH_MS);
if (view.job) openDetail(view.job);
if (view.audit) renderAudit(true);
