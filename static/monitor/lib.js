// What the console's panels share: times shown one way, rows kept in place, commands and their messages.
"use strict";

export const timeZone = document.body.dataset.timeZone || "UTC";
export const canOperate = document.body.dataset.canOperate === "1";
export const canAdminister = document.body.dataset.canAdminister === "1";

// --- times: YYYY-MM-DD HH:MM:SS in the portal's zone, named once in the header (as the CLI and the admin show them)

const dateTimeFormat = new Intl.DateTimeFormat("sv-SE", {
  timeZone, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

export function showTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "";
}

export function generation(number) {
  return String(number).padStart(6, "0"); // six digits, as the CLI and the step commands name it
}

// The offset of the portal's time zone at an instant, in milliseconds.
function zoneOffset(instantMs) {
  const parts = Object.fromEntries(dateTimeFormat.formatToParts(new Date(instantMs)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

// A wall-clock time typed as the page shows times (YYYY-MM-DD HH:MM[:SS], portal time zone) as an
// ISO-8601 UTC instant; null when it is not such a time.
const TYPED_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/;

export function zonedToIso(typed) {
  const match = TYPED_TIME.exec(typed.trim());
  if (!match) return null;
  const [y, mo, d, h, mi, s] = match.slice(1).map((part) => Number(part || 0));
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return null;
  const guess = Date.UTC(y, mo - 1, d, h, mi, s);
  let instant = guess - zoneOffset(guess);
  instant = guess - zoneOffset(instant);
  return new Date(instant).toISOString();
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(Math.abs(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

// --- the DOM, changed only where the data changed (a selection or a hovered button survives a refresh)

export function setText(el, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

export function setClass(el, name) {
  if (el.className !== name) el.className = name;
}

export function show(el, visible) {
  if (el.hidden === visible) el.hidden = !visible;
}

export function cell(tr, className, label) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (label) td.dataset.label = label;
  tr.append(td);
  return td;
}

export function button(label, handler, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label; // the accessible name is exactly the command
  b.dataset.command = label;
  if (className) b.className = className;
  b.addEventListener("click", handler);
  return b;
}

// A press in progress (pointer down, not yet up): the page holds every change until it ends,
// so a click held for half a second (or ten) lands on the button it started on.
let pressed = false;
const afterPress = [];
document.addEventListener("pointerdown", () => { pressed = true; }, true);
const release = () => {
  // After the click the release dispatches: the changes held meanwhile are applied then.
  setTimeout(() => {
    pressed = false;
    for (const work of afterPress.splice(0)) work();
  }, 0);
};
document.addEventListener("pointerup", release, true);
document.addEventListener("pointercancel", release, true);

export function whenNotPressed(work) {
  if (pressed) afterPress.push(work);
  else work();
}

// Rows keyed by id, updated in place; built once, their buttons kept (shown or hidden, never replaced).
// While the pointer is on the table, rows are neither added, removed nor moved (nothing shifts under it);
// the return value says whether such changes wait.
export function syncRows(tbody, items, keyOf, build, update) {
  const existing = new Map();
  for (const tr of tbody.rows) existing.set(tr.dataset.key, tr);
  const holdStructure = tbody.matches(":hover");
  let held = false;
  let cursor = tbody.firstElementChild;
  for (const item of items) {
    const key = String(keyOf(item));
    let tr = existing.get(key);
    if (!tr) {
      if (holdStructure) { held = true; continue; }
      tr = build(item);
      tr.dataset.key = key;
    }
    existing.delete(key);
    tr.item = item;
    update(tr, item);
    if (holdStructure) continue;
    if (tr === cursor) cursor = cursor.nextElementSibling;
    else tbody.insertBefore(tr, cursor);
  }
  for (const tr of existing.values()) {
    if (holdStructure) held = true;
    else tr.remove();
  }
  return held;
}

// A row's buttons change only when the pointer is not on the row: the one about to be clicked stays put.
export function setActions(tr, allowed) {
  const apply = () => {
    for (const b of tr.querySelectorAll("button[data-command]")) show(b, allowed.has(b.dataset.command));
  };
  if (tr.matches(":hover")) {
    tr.pendingActions = apply;
    if (!tr.watchingLeave) {
      tr.watchingLeave = true;
      tr.addEventListener("mouseleave", () => { if (tr.pendingActions) { tr.pendingActions(); tr.pendingActions = null; } });
    }
  } else {
    tr.pendingActions = null;
    apply();
  }
}

// The optional reason box: sent with the next one-click command, then cleared (one reason, one action).
export function takeReason() {
  const box = document.getElementById("reason");
  if (!box) return "";
  const reason = box.value.trim();
  box.value = "";
  return reason;
}

export function reasonPrefill() {
  const box = document.getElementById("reason");
  return box ? box.value.trim() : "";
}

// --- messages: they name the job, say what happened in plain words, and errors stay until dismissed

export function say(text, bad) {
  const box = document.getElementById("messages");
  const line = document.createElement("div");
  line.className = bad ? "message bad" : "message";
  line.setAttribute("role", bad ? "alert" : "status");
  const words = document.createElement("span");
  words.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.textContent = "✕";
  close.setAttribute("aria-label", "dismiss");
  close.addEventListener("click", () => line.remove());
  line.append(words, close);
  box.prepend(line);
  while (box.children.length > 6) box.lastElementChild.remove();
  if (!bad) setTimeout(() => line.remove(), 8000);
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// What the API said, as a sentence: its detail, or each field with its problem.
export function plainError(status, data) {
  if (data && typeof data.detail === "string") return data.detail;
  if (data && typeof data === "object") {
    const parts = Object.entries(data).map(([field, problem]) => `${field}: ${[].concat(problem).map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join(" ")}`);
    if (parts.length) return parts.join("; ");
  }
  return status === 0 ? "the portal could not be reached" : `the portal answered ${status}`;
}

// POST a command; on success `done(data)` names what happened, on failure the message says why.
export async function command(url, payload, what, done) {
  let answer;
  let data = {};
  try {
    answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(payload || {}),
    });
    try { data = await answer.json(); } catch (e) { data = {}; }
  } catch (e) {
    say(`Could not ${what}: the portal could not be reached.`, true);
    return null;
  }
  if (!answer.ok) {
    say(`Could not ${what}: ${plainError(answer.status, data)}`, true);
    return null;
  }
  say(done(data));
  return data;
}

export async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (answer.status === 401 || answer.status === 403) { window.location.reload(); throw new Error("logged out"); }
  if (!answer.ok) throw new Error(plainError(answer.status, await answer.json().catch(() => ({}))));
  return answer.json();
}

// --- the one in-page dialog: a confirmation, a reason, a time or a comment (never window.confirm)

const dialog = document.getElementById("command-dialog");

// ask({title, text, time, comment, reason: "required"|"optional", note, choices: [{label, value}]})
// resolves to {choice, time (ISO), comment, reason} or null when cancelled.
export function ask(options) {
  const el = (id) => document.getElementById(id);
  setText(el("dialog-title"), options.title);
  setText(el("dialog-text"), options.text || "");
  setText(el("dialog-note"), options.note || "");
  setText(el("dialog-error"), "");
  show(el("dialog-time-field"), options.time !== undefined);
  el("dialog-time").value = options.time ? showTime(options.time) : "";
  el("dialog-time").required = Boolean(options.timeRequired);
  show(el("dialog-comment-field"), options.comment !== undefined);
  el("dialog-comment").value = options.comment || "";
  el("dialog-reason").value = options.reasonPrefill || "";
  setText(el("dialog-reason-field").firstChild, options.reason === "required" ? "Reason (required) " : "Reason (optional) ");
  const choices = el("dialog-choices");
  choices.replaceChildren();
  return new Promise((resolve) => {
    const finish = (result) => { dialog.close(); resolve(result); };
    for (const choice of options.choices || [{ label: "OK", value: "ok" }]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = choice.label;
      b.className = "primary";
      b.addEventListener("click", () => {
        const reason = el("dialog-reason").value.trim();
        const typed = el("dialog-time").value.trim();
        const time = typed ? zonedToIso(typed) : null;
        if (options.reason === "required" && !reason) { setText(el("dialog-error"), "Please give a reason: it is kept in the audit log."); return; }
        if (typed && !time) { setText(el("dialog-error"), `"${typed}" is not a time: write it as 2026-03-02 06:30:00 (${timeZone}).`); return; }
        if ((options.timeRequired || choice.needsTime) && !time) { setText(el("dialog-error"), "Please give a time."); return; }
        finish({ choice: choice.value, reason, comment: el("dialog-comment").value, time });
      });
      choices.append(b);
    }
    el("dialog-cancel").onclick = () => finish(null);
    dialog.oncancel = () => resolve(null);
    dialog.showModal();
    (options.comment !== undefined ? el("dialog-comment") : options.time !== undefined ? el("dialog-time") : el("dialog-reason")).focus();
  });
}
