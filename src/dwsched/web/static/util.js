// Small helpers shared by every page. Values are always put in the page as text
// (textContent, attribute values), never parsed as HTML: a name like
// `<img src=x onerror=alert(1)>` shows as those characters.

// h("a", {href: "/x", class: "y", onclick: fn}, "text", child, ...) -> Element.
export function h(tag, attrs = {}, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "style") {
      throw new Error("set styles through el.style (CSP forbids style attributes)");
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

const SVG_TAGS = new Set(["svg", "g", "rect", "line", "path", "text", "title", "circle", "polyline", "defs", "marker", "tspan", "pattern"]);

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// --- Statuses ------------------------------------------------------------------------
// Four groups, each with its colour and its mark, so they differ without reading.
export const STATUS_GROUP = {
  NotRun: "waiting",
  WaitTime: "waiting",
  WaitTrigger: "waiting",
  CheckingCondition: "waiting",
  WaitResource: "waiting",
  Running: "running",
  Checking: "running",
  Success: "success",
  Failure: "failure",
};
const MARK = { waiting: "◷", running: "▶", success: "✓", failure: "✕" };
export const STATUSES = ["NotRun", "WaitTime", "CheckingCondition", "WaitResource", "Running", "Checking", "Success", "Failure"];

export function statusGroup(status) {
  return STATUS_GROUP[status] || "waiting";
}

// ◷ ▶ ✓ ✕: the mark of a status's group.
export function statusMark(status) {
  return MARK[statusGroup(status)];
}

// "dry run" beside a status: the instance (or task) ran nothing, every task a dry run.
export function dryMark(title = "Every task of this instance is a dry run: nothing ran.") {
  return h("span", { class: "dry-mark", title }, "dry run");
}

export function chip(status) {
  const group = statusGroup(status);
  return h("span", { class: `chip chip-${group}`, title: status }, h("span", { class: "mark", "aria-hidden": "true" }, MARK[group]), status);
}

export function finished(status) {
  return status === "Success" || status === "Failure";
}

// --- Time, in the workspace's zone ---------------------------------------------------
const formats = new Map();
function formatter(tz, options) {
  const key = tz + JSON.stringify(options);
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat("en-CA", { timeZone: tz, hourCycle: "h23", ...options }));
  return formats.get(key);
}

function parts(ms, tz) {
  const out = {};
  for (const p of formatter(tz, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(new Date(ms))) {
    out[p.type] = p.value;
  }
  return out;
}

// "2026-11-27 02:30:00" in `tz`; "" for no time.
export function formatTime(ms, tz) {
  if (ms === null || ms === undefined || ms === 0) return "";
  const p = parts(ms, tz);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

// "2026-11-27": the calendar day of `ms` in `tz`.
export function formatDate(ms, tz) {
  const p = parts(ms, tz);
  return `${p.year}-${p.month}-${p.day}`;
}

// Epoch ms of local noon of the day "YYYY-MM-DD" in `tz`: an instant inside that day, which
// is what a BizDate parameter needs.
export function dayToMs(day, tz) {
  const [y, m, d] = day.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d, 12);
  const p = parts(guess, tz);
  const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return guess - (shown - guess);
}

export function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return t.toISOString().slice(0, 10);
}

export function today(tz) {
  return formatDate(Date.now(), tz);
}

export function yesterday(tz) {
  return addDays(today(tz), -1);
}

// 0:00:05, 1:02:03, 2d 03:00:00; "" when it has not started.
export function formatDuration(startMs, endMs) {
  if (!startMs) return "";
  const total = Math.max(0, Math.round(((endMs || Date.now()) - startMs) / 1000));
  const days = Math.floor(total / 86400);
  const hh = Math.floor((total % 86400) / 3600);
  const mm = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  return `${days ? `${days}d ` : ""}${hh}:${mm}:${ss}`;
}

// --- URL state ------------------------------------------------------------------------
export function query() {
  return new URLSearchParams(location.search);
}

// Replace the address's query with `values` (empty values left out) without a new history
// entry unless `push`.
export function setQuery(values, push = false) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const url = `${location.pathname}${q.toString() ? `?${q}` : ""}`;
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

// --- Feedback -------------------------------------------------------------------------
export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  const item = h("div", { class: `toast toast-${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}

export function errorBox(error) {
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, error.code || "Error"),
    " ",
    error.message || String(error),
    error.requestId ? h("span", { class: "muted" }, ` (RequestId ${error.requestId})`) : null,
  );
}

// A modal dialog: `body` (nodes), buttons [{label, value, primary}]; resolves with the value
// of the button pressed (Escape: null). Keyboard: focus starts on the first control.
export function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const d = h("dialog", { class: "dialog", "aria-labelledby": "dialog-title" });
    const done = (value) => {
      d.close();
      d.remove();
      resolve(value);
    };
    d.append(
      h("h2", { id: "dialog-title" }, title),
      h("div", { class: "dialog-body" }, body),
      h(
        "div",
        { class: "dialog-buttons" },
        buttons.map((b) => h("button", { type: "button", class: b.primary ? "primary" : "", onclick: () => done(b.value) }, b.label)),
      ),
    );
    d.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(null);
    });
    document.body.append(d);
    d.showModal();
  });
}

export function confirmDialog(title, message, label = "Confirm") {
  return dialog(title, h("p", {}, message), [
    { label: "Cancel", value: false },
    { label, value: true, primary: true },
  ]);
}

export function link(href, ...children) {
  return h("a", { href, "data-nav": true }, ...children);
}

// --- ISO dates --------------------------------------------------------------------------
// Dates are typed and shown as YYYY-MM-DD everywhere (an <input type=date> shows the
// browser's locale, mm/dd/yyyy in en-US): text fields checked as real calendar days.
export const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

export function isIsoDay(text) {
  if (!ISO_DAY.test(text)) return false;
  const [y, m, d] = text.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

// A date field: `attrs` as for h("input") (id, value, required, max: "YYYY-MM-DD"). While
// what is typed is not an ISO day (or is after `max`) the field is marked invalid
// (aria-invalid, the browser's own validity with a message saying why); `dayValue(input)`
// is the day, or "" when the field is empty or invalid.
export function dayInput(attrs) {
  const { max, ...rest } = attrs;
  const input = h("input", {
    type: "text",
    inputmode: "numeric",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "YYYY-MM-DD",
    pattern: "\\d{4}-\\d{2}-\\d{2}",
    maxlength: 10,
    size: 10,
    class: "day-input",
    ...rest,
  });
  const check = () => {
    const v = input.value.trim();
    let problem = "";
    if (v === "") problem = input.required ? "Enter a date as YYYY-MM-DD." : "";
    else if (!isIsoDay(v)) problem = "Enter a date as YYYY-MM-DD (e.g. 2025-03-31).";
    else if (max && v > max) problem = `The latest date allowed is ${max}.`;
    input.setCustomValidity(problem);
    if (problem && v !== "") input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    input.title = problem || "YYYY-MM-DD";
  };
  input.addEventListener("input", check);
  input.check = check;
  check();
  return input;
}

export function dayValue(input) {
  if (input.check) input.check(); // the value may have been set, not typed
  const v = input.value.trim();
  return v !== "" && input.validity.valid ? v : "";
}

// The BizDate field of the list and the overview: a date input between previous-day and
// next-day buttons, labelled with the workspace's zone.
export function dayPicker(input, tz, shiftDay) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: input.id }, `BizDate (${tz})`),
    h(
      "div",
      { class: "day-picker" },
      h("button", { type: "button", "aria-label": "Previous day", onclick: () => shiftDay(-1) }, "‹"),
      input,
      h("button", { type: "button", "aria-label": "Next day", onclick: () => shiftDay(1) }, "›"),
    ),
  );
}
