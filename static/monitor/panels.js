// The panels beside the jobs: late and open batches, held arrivals, open alerts, cut-offs, scheduler tasks.
"use strict";

import {
  ago, ask, button, canOperate, cell, command, reasonPrefill, setActions, setClass, setText, show, showTime, syncRows, takeReason,
} from "./lib.js";
import { refresh } from "./monitor.js";

const TASK_LABELS = { enable: "enable", disable: "disable", suspend: "suspend", resume: "resume", "run-now": "run now" };

// --- batches, held arrivals, alerts, cut-offs -----------------------------------------------------

let openAlerts = [];

function batchAlert(batch) {
  // An open alert (DOMAIN §7) about this batch: the alerts' kind names the batch state, the subject the config.
  return openAlerts.find((a) => a.kind === `BATCH_${batch.state}` && a.state === "OPEN" && String(a.subject).includes(batch.config));
}

export function renderBatches(batches) {
  const tbody = document.querySelector("#batches tbody");
  syncRows(tbody, batches, (b) => `${b.tenant}/${b.config}`, (b) => {
    const tr = document.createElement("tr");
    cell(tr, "config", "Config"); cell(tr, "batch-state", "State"); cell(tr, "window", "Window"); cell(tr, "missing", "Missing");
    if (canOperate) {
      const actions = cell(tr, "actions");
      actions.append(button("fail window", () => failWindow(tr.item)), button("acknowledge", () => acknowledge(batchAlert(tr.item))));
    }
    return tr;
  }, (tr, b) => {
    const [config, state, window_, missing] = tr.cells;
    setText(config, `${b.config} (${b.tenant})`);
    // The alert state stays until the next scan; a window an operator failed says so at once, with who and why.
    setText(state, b.window_status === "FAILED" ? `${b.state}\nwindow FAILED by ${b.failed_by} at ${showTime(b.failed_at)}: ${b.fail_reason}` : b.state);
    setClass(state, `batch-state state-${b.state}`);
    setText(window_, `${showTime(b.window_start)} →\n${showTime(b.window_end)}\nSLA ${showTime(b.sla)}`);
    setText(missing, (b.missing_sources || []).join(", ") || "–");
    if (canOperate) setActions(tr, new Set([...(b.may_fail ? ["fail window"] : []), ...(batchAlert(b) ? ["acknowledge"] : [])]));
  });
  setText(document.getElementById("batches-count"), batches.length);
  show(document.getElementById("batches-empty"), batches.length === 0);
}

async function failWindow(b) {
  const answer = await ask({
    title: `Fail the window of ${b.config} (${b.tenant})?`,
    text: `Window ${showTime(b.window_start)} → ${showTime(b.window_end)}, missing ${(b.missing_sources || []).join(", ") || "nothing"}. A failed window counts as finished: arrivals held behind it move on.`,
    reason: "required", reasonPrefill: reasonPrefill(), choices: [{ label: "Fail the window", value: "ok" }],
  });
  if (!answer) return;
  await command(`/api/v1/batch-windows/${b.window_id}/fail/`, { reason: answer.reason }, `fail the window of ${b.config}`,
    (data) => `Failed the window of ${b.config} (${b.tenant}); ${data.held_applied} held arrival(s) applied, ${data.still_held} still held.`);
  refresh();
}

export function renderHeld(held) {
  const tbody = document.querySelector("#held tbody");
  syncRows(tbody, held, (h) => h.id, (h) => {
    const tr = document.createElement("tr");
    cell(tr, "config", "Config"); cell(tr, "", "Source"); cell(tr, "", "Extract"); cell(tr, "behind", "Waits behind");
    if (canOperate) cell(tr, "actions").append(button("release", () => releaseHeld(tr.item)));
    return tr;
  }, (tr, h) => {
    const [config, source, extract, behind] = tr.cells;
    setText(config, `${h.config} (${h.tenant})`);
    setText(source, h.source);
    setText(extract, showTime(h.extract_timestamp));
    const blocker = h.blocked_by;
    setText(behind, `window ${showTime(blocker.window_start)} → ${showTime(blocker.window_end)} (${blocker.status || "not opened yet"})`);
  });
  setText(document.getElementById("held-count"), held.length);
  for (const id of ["held-title", "held"]) show(document.getElementById(id), held.length > 0);
}

async function releaseHeld(h) {
  const blocker = h.blocked_by;
  const answer = await ask({
    title: `Release ${h.source} of ${h.config} (${h.tenant})?`,
    text: `It waits behind the window ${showTime(blocker.window_start)} → ${showTime(blocker.window_end)}. Releasing fails that window, so the arrivals held behind it are applied.`,
    reason: "required", reasonPrefill: reasonPrefill(), choices: [{ label: "Fail the blocking window and release", value: "ok" }],
  });
  if (!answer) return;
  await command(`/api/v1/held-arrivals/${h.id}/release/`, { reason: answer.reason }, `release ${h.source} of ${h.config}`,
    (data) => `Released ${h.source} of ${h.config}: the blocking window failed, ${data.held_applied} held arrival(s) applied.`);
  refresh();
}

export function renderAlerts(alerts) {
  const section = document.getElementById("alerts-section");
  show(section, Array.isArray(alerts));
  if (!Array.isArray(alerts)) return; // the feed has no alerts until DOMAIN §7 is in
  const open = alerts.filter((a) => a.state !== "RESOLVED");
  openAlerts = open;
  syncRows(document.querySelector("#alerts tbody"), open, (a) => a.id, (a) => {
    const tr = document.createElement("tr");
    cell(tr, "", "Kind"); cell(tr, "", "Subject"); cell(tr, "summary", "Summary"); cell(tr, "", "State"); cell(tr, "", "Opened");
    if (canOperate) cell(tr, "actions").append(button("acknowledge", () => acknowledge(tr.item)));
    return tr;
  }, (tr, a) => {
    const [kind, subject, summary, state, opened] = tr.cells;
    setText(kind, a.kind); setText(subject, a.subject); setText(summary, a.summary); setText(state, a.state);
    setText(opened, showTime(a.opened_at));
    if (canOperate) setActions(tr, new Set(a.state === "OPEN" ? ["acknowledge"] : []));
  });
  setText(document.getElementById("alerts-count"), open.length);
}

async function acknowledge(alert) {
  if (!alert) return;
  const answer = await ask({
    title: `Acknowledge ${alert.kind}: ${alert.subject}?`, text: alert.summary, time: null,
    note: "With a time, the alert opens again then if its cause is still there.", reason: "required", reasonPrefill: reasonPrefill(),
    choices: [{ label: "Acknowledge", value: "ok" }],
  });
  if (!answer) return;
  await command(`/api/v1/alerts/${alert.id}/acknowledge/`, { reason: answer.reason, ...(answer.time ? { until: answer.time } : {}) },
    `acknowledge ${alert.kind} ${alert.subject}`, () => `Acknowledged ${alert.kind}: ${alert.subject}.`);
  refresh();
}

// The cut-offs count down between refreshes: from next_at, on the server's clock (data.now) carried forward.
let cutoffRows = [];
let serverSkewMs = 0;

function countDown() {
  for (const tr of cutoffRows) {
    const left = (Date.parse(tr.item.next_at) - (Date.now() + serverSkewMs)) / 1000;
    setText(tr.cells[2], left > 0 ? ago(left) : "now");
  }
}
setInterval(countDown, 1000);

export function renderCutoffs(cutoffs, now) {
  show(document.getElementById("cutoffs-section"), Array.isArray(cutoffs) && cutoffs.length > 0);
  if (!Array.isArray(cutoffs)) return;
  if (now) serverSkewMs = Date.parse(now) - Date.now();
  const tbody = document.querySelector("#cutoffs tbody");
  syncRows(tbody, cutoffs, (c) => c.id, () => {
    const tr = document.createElement("tr");
    cell(tr, "name", "Cut-off"); cell(tr, "", "At"); cell(tr, "num", "Left"); cell(tr, "pending", "Pending");
    return tr;
  }, (tr, c) => {
    const [name, at] = tr.cells;
    setText(name, `${c.name} (${c.interface})${c.at_risk ? "\nAT RISK" : ""}`);
    setClass(name, c.at_risk ? "name state-AT_RISK" : "name");
    setText(at, showTime(c.next_at));
    setText(tr.cells[3], (c.pending || []).map((p) => `${p.count} pending, ${p.currency} ${p.value}`).join("\n") || "nothing pending");
  });
  cutoffRows = [...tbody.rows];
  countDown();
  setText(document.getElementById("cutoffs-count"), cutoffs.length);
}

export function renderTimeline(entries) {
  show(document.getElementById("timeline-section"), Array.isArray(entries) && entries.length > 0);
  if (!Array.isArray(entries)) return;
  syncRows(document.querySelector("#timeline tbody"), entries, (e) => `${e.at} ${e.kind} ${e.subject}`, () => {
    const tr = document.createElement("tr");
    cell(tr, "", "At"); cell(tr, "", "What"); cell(tr, "", "Subject"); cell(tr, "detail", "Detail");
    return tr;
  }, (tr, e) => {
    const [at, kind, subject, detail] = tr.cells;
    setText(at, showTime(e.at)); setText(kind, e.kind); setText(subject, e.subject);
    setText(detail, e.more ? `${e.detail}; ${e.more} more run(s) today` : e.detail);
  });
  setText(document.getElementById("timeline-count"), entries.length);
}

// --- scheduler tasks ------------------------------------------------------------------------------

export function renderTasks(tasks) {
  syncRows(document.querySelector("#tasks tbody"), tasks, (t) => t.id, (t) => {
    const tr = document.createElement("tr");
    cell(tr, "name", "Name"); cell(tr, "", "State"); cell(tr, "", "Next run"); cell(tr, "", "Calendars"); cell(tr, "why", "Why");
    if (canOperate) {
      const actions = cell(tr, "actions");
      for (const [name, label] of Object.entries(TASK_LABELS)) {
        const b = button(label, () => taskCommand(tr.item, name));
        b.dataset.command = name;
        actions.append(b);
      }
    }
    return tr;
  }, (tr, t) => {
    const [name, state, next, calendars, why] = tr.cells;
    setText(name, t.name);
    if (name.title !== t.subtype) name.title = t.subtype;
    setText(state, t.state);
    setClass(state, `state-${t.state}`);
    const nextText = t.state === "SUSPENDED" ? (t.resume_at ? `resumes ${showTime(t.resume_at)}` : "until resumed")
      : ["DISABLED", "INACTIVE"].includes(t.state) ? "–" : showTime(t.next_timeout_at);
    setText(next, nextText);
    setText(calendars, t.calendars.length ? t.calendars.join(", ") : "always open");
    const reason = t.state === "SUSPENDED" ? `suspended by ${t.suspended_by || "a process"} at ${showTime(t.suspended_at)}: ${t.suspended_reason}`
      : t.state === "ERROR" ? `${t.consecutive_failures} failure(s), last at ${showTime(t.last_error_at)}: ${t.last_error}` : "";
    setText(why, reason);
    if (canOperate) setActions(tr, new Set(t.commands));
  });
  setText(document.getElementById("tasks-count"), tasks.filter((t) => ["ERROR", "SUSPENDED"].includes(t.state)).length
    ? `${tasks.filter((t) => t.state === "ERROR").length} in error, ${tasks.filter((t) => t.state === "SUSPENDED").length} suspended` : "");
}

async function taskCommand(task, name) {
  const url = `/api/v1/scheduler-tasks/${task.id}/${name}/`;
  const what = `${TASK_LABELS[name]} task ${task.name}`;
  const done = (data) => `${TASK_LABELS[name][0].toUpperCase()}${TASK_LABELS[name].slice(1)}: task ${task.name} is now ${data.state}.`;
  if (name === "suspend") {
    const answer = await ask({
      title: `Suspend task ${task.name}?`, text: "A suspended task does not run; its next summary covers the time it was suspended.",
      time: null, note: "With a resume time, it resumes by itself then; without, an operator resumes it.",
      reason: "required", reasonPrefill: reasonPrefill(), choices: [{ label: "Suspend", value: "ok" }],
    });
    if (answer) await command(url, { reason: answer.reason, resume_at: answer.time }, what, done);
  } else if (name === "disable") {
    const answer = await ask({
      title: `Disable task ${task.name}?`, text: "A disabled task does not run until enabled; enabling starts it afresh.",
      reason: "required", reasonPrefill: reasonPrefill(), choices: [{ label: "Disable", value: "ok" }],
    });
    if (answer) await command(url, { reason: answer.reason }, what, done);
  } else {
    await command(url, { reason: takeReason() }, what, done);
  }
  refresh();
}
