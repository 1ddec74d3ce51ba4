// A job's detail beside the page (the same as `manage.py jobs show ID`) and the audit log, both in the URL.
"use strict";

import { button, canOperate, cell, generation, getJson, say, setActions, setText, show, showTime, syncRows } from "./lib.js";
import { jobCommand, jobName, saveView, view } from "./monitor.js";

const JOB_COMMANDS = ["start", "pause", "reset", "disable", "enable", "schedule", "comment"];
const panel = document.getElementById("detail");
let shown = null; // the job the panel shows, for its buttons

export async function openDetail(id) {
  view.job = String(id);
  saveView();
  show(panel, true);
  await refreshDetail();
  document.getElementById("detail-close").focus();
}

export function closeDetail() {
  view.job = "";
  saveView();
  show(panel, false);
  shown = null;
}

function field(dl, name, value, className) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value === null || value === undefined || value === "" ? "–" : String(value);
  if (className) dd.className = className;
  dl.append(dt, dd);
}

export async function refreshDetail() {
  const id = view.job;
  if (!id) return;
  let job;
  try {
    job = await getJson(`/monitor/data/jobs/${id}/`);
  } catch (error) {
    say(`Could not show job ${id}: ${error.message}`, true);
    closeDetail();
    return;
  }
  if (view.job !== id) return; // closed, or another job opened, meanwhile
  shown = job;
  setText(document.getElementById("detail-title"), `Job ${job.id} · ${job.spool}/${generation(job.generation)} · step ${job.state} ${job.type} · attempt ${job.attempt} · ${job.status}`);
  const actions = document.getElementById("detail-actions");
  if (canOperate && !actions.childElementCount) {
    for (const name of JOB_COMMANDS) actions.append(button(name, () => jobCommand(shown, name).then(refreshDetail)));
  }
  if (canOperate) setActions(actions, new Set(job.commands));

  const fields = document.createElement("dl");
  fields.id = "detail-fields";
  field(fields, "Waiting for", job.waiting_for || (job.stop_flag && job.status === "Running" ? "pause pending: stops after this attempt" : ""));
  field(fields, "Timestamp", showTime(job.timestamp));
  field(fields, "Command as run", job.command.join(" "), "mono");
  field(fields, "Return code", job.return_code);
  field(fields, "Started", showTime(job.started));
  field(fields, "Finished", showTime(job.finished));
  field(fields, "Worker", job.worker);
  field(fields, "Comment", job.comment);
  if (job.schedule_note) field(fields, "Note", job.schedule_note);
  document.getElementById("detail-fields").replaceWith(fields);
  setText(document.getElementById("detail-output"), job.output_tail || "(no output)");

  syncRows(document.querySelector("#detail-attempts tbody"), job.attempts.slice().reverse(), (a) => a.id, () => {
    const tr = document.createElement("tr");
    for (const label of ["Step", "Attempt", "Claimed", "Finished", "Return code", "Outcome"]) cell(tr, "", label);
    return tr;
  }, (tr, a) => {
    const [step, attempt, claimed, finished, rc, outcome] = tr.cells;
    setText(step, a.state); setText(attempt, a.attempt); setText(claimed, showTime(a.claimed)); setText(finished, showTime(a.finished));
    setText(rc, a.return_code ?? "–"); setText(outcome, a.outcome || "running");
  });
  syncRows(document.querySelector("#detail-audit tbody"), job.audit.slice().reverse(), (e) => e.id, () => {
    const tr = document.createElement("tr");
    for (const label of ["At", "Who", "Action", "Reason"]) cell(tr, "", label);
    return tr;
  }, (tr, e) => {
    const [at, who, action, reason] = tr.cells;
    setText(at, showTime(e.at)); setText(who, e.actor); setText(action, e.action); setText(reason, e.reason || "–");
  });
  panel.setAttribute("aria-label", jobName(job));
}

// --- the audit log (GET /api/v1/audit/, newest first) ----------------------------------------------

let auditNext = null;

function changeText(entry) {
  const before = entry.before || {};
  const after = entry.after || {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  const short = (value) => {
    const text = value === null || value === undefined ? "–" : typeof value === "string" ? value : JSON.stringify(value);
    return text.length > 40 ? `${text.slice(0, 39)}…` : text;
  };
  return keys.slice(0, 4).map((k) => `${k}: ${short(before[k])} → ${short(after[k])}`).join("; ") + (keys.length > 4 ? "; …" : "");
}

async function loadAudit(url, append) {
  let page;
  try {
    page = await getJson(url);
  } catch (error) {
    say(`Could not read the audit log: ${error.message}`, true);
    return;
  }
  const tbody = document.querySelector("#audit tbody");
  if (!append) tbody.replaceChildren();
  for (const entry of page.results) {
    const tr = document.createElement("tr");
    setText(cell(tr, "", "At"), showTime(entry.at));
    setText(cell(tr, "", "Who"), entry.actor);
    setText(cell(tr, "", "Action"), entry.action);
    setText(cell(tr, "", "Object"), entry.object_repr || `${entry.object_type} ${entry.object_id}`);
    setText(cell(tr, "", "Reason"), entry.reason || "–");
    setText(cell(tr, "change", "Change"), changeText(entry));
    tbody.append(tr);
  }
  auditNext = page.next;
  document.getElementById("audit-older").disabled = !auditNext;
}

export function renderAudit(visible) {
  const section = document.getElementById("audit-section");
  show(section, visible);
  if (!visible) return;
  loadAudit("/api/v1/audit/?page_size=50", false).then(() => section.scrollIntoView({ block: "start" }));
}

document.getElementById("audit-older").addEventListener("click", () => { if (auditNext) loadAudit(auditNext, true); });
