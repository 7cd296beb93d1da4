// The overview: one workspace's instances by status over the 14 BizDates ending at the
// chosen one (one GetInstanceStatusCounts call), then that day's failures, what runs now,
// and its counts by status, each linked to the filtered instance list. Successes that ran
// nothing (instances made only of dry runs: GetInstanceStatusCounts' DryRun) are drawn and
// counted apart from real successes.
import { call } from "../api.js";
import {
  h,
  clear,
  chip,
  STATUSES,
  statusGroup,
  finished,
  formatTime,
  formatDuration,
  dayToMs,
  addDays,
  yesterday,
  query,
  setQuery,
  errorBox,
  link,
  dayPicker,
  dayInput,
  dayValue,
  isIsoDay,
  dryMark,
} from "../util.js";

const DAYS = 14;
const REFRESH_MS = 10000;
const FAILURES_SHOWN = 20;
const RUNNING_SHOWN = 10;
const DRY = "DryRun"; // the successes that ran nothing, drawn as a status of their own
const AUTO_KEY = "dwsched.overview.autorefresh";
// Stacking order, bottom first: finished work under what is still to come.
const ORDER = ["Success", DRY, "Failure", "Checking", "Running", "WaitResource", "CheckingCondition", "WaitTime", "WaitTrigger", "NotRun"];
const GROUPS = [
  ["success", "Success"],
  ["dry", "Dry run (Success, nothing ran)"],
  ["failure", "Failure"],
  ["running", "Running, Checking"],
  ["waiting", "Waiting (NotRun, WaitTime, CheckingCondition, WaitResource)"],
];
// Chart geometry, in viewBox units (the svg scales to its box).
const W = 840;
const H = 260;
const M = { top: 18, right: 8, bottom: 30, left: 46 };

export async function render(main, ctx) {
  const project = ctx.project;
  const tz = project.TimeZone || "UTC";
  const q = query();
  const state = {
    bizdate: isIsoDay(q.get("bizdate") || "") ? q.get("bizdate") : yesterday(tz),
    env: q.get("env") === "Dev" ? "Dev" : "Prod",
  };
  let alive = true;
  let seq = 0;
  let timer = null;
  let due = false;
  let auto = localStorage.getItem(AUTO_KEY) !== "off";
  let lastChart = "";
  let unfinishedToday = false;
  const firstAnswers = fetchAll(); // before drawing: the first paint waits for one round trip

  const listUrl = (extra = {}) => `/console/instances?${new URLSearchParams({ project: project.Id, bizdate: state.bizdate, env: state.env, ...extra })}`;

  // --- Controls ---------------------------------------------------------------------
  const bizdate = dayInput({ id: "bizdate", value: state.bizdate, required: true, onchange: () => {
    const day = dayValue(bizdate);
    if (day) change({ bizdate: day });
  } });
  const shiftDay = (n) => {
    bizdate.value = addDays(state.bizdate, n);
    bizdate.check();
    change({ bizdate: bizdate.value });
  };
  const env = h(
    "select",
    { id: "filter-env", onchange: () => change({ env: env.value }) },
    ["Prod", "Dev"].map((v) => h("option", { value: v, selected: v === state.env }, v)),
  );
  const autoBox = h("input", { type: "checkbox", id: "auto-refresh", checked: auto, onchange: () => {
    auto = autoBox.checked;
    localStorage.setItem(AUTO_KEY, auto ? "on" : "off");
    schedule();
  } });
  const updated = h("span", { id: "updated", class: "muted" });
  const listLink = link(listUrl(), "Instance list");

  const chartBox = h("div", { class: "chart-box", id: "chart" }, h("p", { class: "loading" }, "Loading…"));
  const chartTitle = h("h2", { id: "chart-title" });
  const failuresTitle = h("h2", { id: "failures-title" });
  const failuresBox = h("div", { class: "failures-box" });
  const runningTitle = h("h2", { id: "running-title" }, "Running now");
  const runningBox = h("div", { class: "running-box" });
  const countsTitle = h("h2", { id: "counts-title" });
  const countsBox = h("div", { class: "counts-box" });

  clear(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), h("span", { class: "muted" }, project.Name), listLink),
    h(
      "form",
      { class: "filters", "aria-label": "Day", onsubmit: (e) => e.preventDefault() },
      h(
        "div",
        { class: "filter-row" },
        dayPicker(bizdate, tz, shiftDay),
        h("div", { class: "field" }, h("label", { for: "filter-env" }, "Environment"), env),
        h("div", { class: "field field-button refresh" }, h("label", { for: "auto-refresh", class: "check" }, autoBox, "Auto-refresh"), updated),
      ),
    ),
    h("section", { class: "panel overview-panel", "aria-labelledby": "chart-title" }, chartTitle, chartBox),
    h(
      "div",
      { class: "overview-grid" },
      h("section", { class: "panel overview-panel", "aria-labelledby": "failures-title" }, failuresTitle, failuresBox),
      h(
        "div",
        {},
        h("section", { class: "panel overview-panel", "aria-labelledby": "running-title" }, runningTitle, runningBox),
        h("section", { class: "panel overview-panel", "aria-labelledby": "counts-title" }, countsTitle, countsBox),
      ),
    ),
  );
  titles();
  setQuery({ project: project.Id, bizdate: state.bizdate, env: state.env });

  function titles() {
    chartTitle.textContent = `Instances by status, ${DAYS} BizDates to ${state.bizdate}`;
    failuresTitle.textContent = `Failures of ${state.bizdate}`;
    countsTitle.textContent = `Instances of ${state.bizdate} by status`;
    listLink.setAttribute("href", listUrl());
  }

  function change(changes) {
    Object.assign(state, changes);
    setQuery({ project: project.Id, bizdate: state.bizdate, env: state.env });
    titles();
    lastChart = "";
    load();
  }

  // --- Loading ----------------------------------------------------------------------
  // Dry runs cost a look at each success's tasks: a quiet refresh asks for the chosen
  // day's only and keeps the other days' from the last full load.
  const dryRuns = new Map(); // `${env} ${date}` -> successes that ran nothing
  function withDryRuns(answer) {
    for (const day of answer.Days || []) {
      const key = `${state.env} ${day.Date}`;
      if (day.DryRun === null || day.DryRun === undefined) day.DryRun = dryRuns.get(key) ?? 0;
      else dryRuns.set(key, day.DryRun);
    }
    return answer;
  }

  function fetchAll(quiet = false) {
    const base = { ProjectId: project.Id, BizDate: dayToMs(state.bizdate, tz), EnvType: state.env };
    return Promise.allSettled([
      call("GetInstanceStatusCounts", { ...base, Days: DAYS, DryRunDays: quiet ? 1 : DAYS }).then(withDryRuns),
      call("ListWorkflowInstances", { ...base, Filter: { status: ["Failure"] }, SortBy: "FinishedTime Desc", PageSize: FAILURES_SHOWN }),
      call("ListWorkflowInstances", { ...base, Filter: { status: ["Running", "Checking"] }, SortBy: "StartedTime Asc", PageSize: RUNNING_SHOWN }),
    ]);
  }

  async function load(quiet = false, pending = null) {
    const mine = ++seq;
    clearTimeout(timer);
    timer = null;
    due = false;
    if (!quiet) chartBox.setAttribute("aria-busy", "true");
    const [counts, failures, running] = await (pending || fetchAll(quiet));
    if (!alive || mine !== seq) return;
    chartBox.removeAttribute("aria-busy");
    const restore = focusKey();
    if (counts.status === "fulfilled") {
      drawChart(counts.value);
      const day = (counts.value.Days || []).at(-1) || { Counts: {}, Total: 0 };
      drawCounts(day);
      unfinishedToday = Object.entries(day.Counts || {}).some(([s, n]) => n > 0 && !finished(s));
    } else if (!quiet) {
      lastChart = "";
      clear(chartBox, errorBox(counts.reason));
      clear(countsBox, errorBox(counts.reason));
    }
    if (failures.status === "fulfilled") drawFailures(failures.value.PagingInfo || {});
    else if (!quiet) clear(failuresBox, errorBox(failures.reason));
    if (running.status === "fulfilled") drawRunning(running.value.PagingInfo || {});
    else if (!quiet) clear(runningBox, errorBox(running.reason));
    if (restore) refocus(restore);
    const failed = [counts, failures, running].find((r) => r.status === "rejected");
    updated.textContent = quiet && failed ? `refresh failed: ${failed.reason.message}` : `updated ${formatTime(Date.now(), tz).slice(11)}`;
    schedule();
  }

  // Redrawing replaces elements; put the focus back on the element with the same key.
  function focusKey() {
    const a = document.activeElement;
    return a && main.contains(a) && a.dataset && a.dataset.fk ? a.dataset.fk : null;
  }

  function refocus(key) {
    const el = main.querySelector(`[data-fk="${CSS.escape(key)}"]`);
    if (el && el !== document.activeElement) el.focus({ preventScroll: true });
  }

  // --- Chart ------------------------------------------------------------------------
  // Each group has a texture as well as a colour, so the bars read without telling colours
  // apart: waiting hatched, running dotted, failure cross-hatched, success plain.
  function patterns() {
    const tile = (group, ...marks) =>
      h("pattern", { id: `pat-${group}`, width: 6, height: 6, patternUnits: "userSpaceOnUse" }, h("rect", { class: `pat-bg-${group}`, width: 6, height: 6 }), marks);
    return h(
      "defs",
      {},
      tile("waiting", h("path", { class: "pat-mark", d: "M-1 1 L1 -1 M0 6 L6 0 M5 7 L7 5" })),
      tile("running", h("circle", { class: "pat-dot", cx: 3, cy: 3, r: 1.1 })),
      tile("failure", h("path", { class: "pat-mark", d: "M0 0 L6 6 M6 0 L0 6" })),
      tile("dry", h("path", { class: "pat-mark", d: "M0 3 L6 3" })),
    );
  }

  function drawChart(data) {
    const days = (data.Days || []).map((d) => ({ ...d, Counts: shownCounts(d) }));
    const signature = JSON.stringify([state.bizdate, state.env, days.map((d) => [d.Date, d.Counts])]);
    if (signature === lastChart) return;
    lastChart = signature;
    const statuses = [...ORDER];
    for (const s of data.Statuses || []) if (!statuses.includes(s)) statuses.push(s);
    for (const d of days) for (const s of Object.keys(d.Counts || {})) if (!statuses.includes(s)) statuses.push(s);

    const plotW = W - M.left - M.right;
    const plotH = H - M.top - M.bottom;
    const max = Math.max(0, ...days.map((d) => d.Total || 0));
    const step = niceStep(max / 5);
    const top = Math.max(step, Math.ceil(max / step) * step);
    const ticks = Math.round(top / step);
    const y = (n) => M.top + plotH - (n / top) * plotH;
    const band = plotW / Math.max(1, days.length);
    const barW = Math.min(44, band * 0.68);

    const grid = [];
    for (let i = 0; i <= ticks; i++) {
      const v = step * i;
      grid.push(
        h("line", { class: i ? "grid" : "axis-line", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }),
        h("text", { class: "axis", x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, String(v)),
      );
    }

    const bars = days.map((d, i) => {
      const x0 = M.left + band * i;
      const x = x0 + (band - barW) / 2;
      const counts = d.Counts || {};
      const parts = statuses.filter((s) => counts[s] > 0);
      let acc = 0;
      const segs = parts.map((s) => {
        const n = counts[s];
        const yTop = y(acc + n);
        const height = Math.max(2, y(acc) - yTop); // a few instances stay visible
        acc += n;
        return h("rect", { class: `seg seg-${groupOf(s)}`, x, y: yTop, width: barW, height }, h("title", {}, `${d.Date} ${nameOf(s)}: ${n}`));
      });
      const summary = parts.map((s) => `${nameOf(s)} ${counts[s]}`).join(", ");
      const label = `${d.Date}: ${d.Total || 0} instances${summary ? ` (${summary})` : ""}. Open the instance list of this BizDate.`;
      const go = () => ctx.navigate(listUrl({ bizdate: d.Date }));
      return h(
        "g",
        {
          class: `bar${d.Date === state.bizdate ? " selected" : ""}`,
          tabindex: 0,
          role: "button",
          "aria-label": label,
          dataset: { date: d.Date, fk: `bar:${d.Date}` },
          onclick: go,
          onkeydown: (e) => {
            if (e.key === "Enter" || e.key === " ") {
              e.preventDefault();
              go();
            }
          },
        },
        h("rect", { class: "hit", x: x0 + 1, y: M.top - 14, width: band - 2, height: plotH + 14 + 26 }, h("title", {}, `${d.Date}: ${d.Total || 0} instances`)),
        segs,
        d.Total ? h("text", { class: "bar-total", x: x + barW / 2, y: y(d.Total) - 4, "text-anchor": "middle" }, String(d.Total)) : null,
        h("text", { class: "day-label", x: x + barW / 2, y: H - M.bottom + 16, "text-anchor": "middle" }, d.Date.slice(5)),
      );
    });

    const svg = h(
      "svg",
      {
        id: "status-chart",
        class: "status-chart",
        viewBox: `0 0 ${W} ${H}`,
        role: "group",
        "aria-label": `Workflow instances by status for the ${days.length} BizDates ending ${state.bizdate}. Each bar is a button that opens that BizDate's instance list; the numbers are also in the table that follows.`,
        preserveAspectRatio: "xMidYMid meet",
      },
      patterns(),
      grid,
      bars,
    );

    const legend = h(
      "ul",
      { class: "legend", "aria-label": "Legend" },
      GROUPS.map(([g, text]) => h("li", {}, h("span", { class: `swatch swatch-${g}`, "aria-hidden": "true" }), text)),
    );

    const used = statuses.filter((s) => days.some((d) => (d.Counts || {})[s] > 0));
    const shown = used.length ? used : ["Success", "Failure"];
    const table = h(
      "table",
      { class: "visually-hidden", id: "status-table" },
      h("caption", {}, `Workflow instances by status, BizDates ${days.length ? days[0].Date : ""} to ${state.bizdate}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "BizDate"), shown.map((s) => h("th", { scope: "col" }, nameOf(s))), h("th", { scope: "col" }, "Total"))),
      h(
        "tbody",
        {},
        days.map((d) => h("tr", {}, h("th", { scope: "row" }, d.Date), shown.map((s) => h("td", {}, String((d.Counts || {})[s] || 0))), h("td", {}, String(d.Total || 0)))),
      ),
    );
    clear(chartBox, svg, legend, table);
  }

  // A day's counts as drawn: its dry-run successes apart from the real ones.
  function shownCounts(day) {
    const counts = { ...(day.Counts || {}) };
    const dry = Math.min(day.DryRun || 0, counts.Success || 0);
    if (dry) {
      counts.Success -= dry;
      counts[DRY] = dry;
    }
    return counts;
  }

  function groupOf(s) {
    return s === DRY ? "dry" : statusGroup(s);
  }

  function nameOf(s) {
    return s === DRY ? "Dry run" : s;
  }

  // --- Lists ------------------------------------------------------------------------
  function instanceLink(it, prefix) {
    const a = link(`/console/instances/${it.Id}?project=${project.Id}`, String(it.Id));
    a.dataset.fk = `${prefix}:${it.Id}`;
    return a;
  }

  function drawFailures(paging) {
    const rows = paging.WorkflowInstances || [];
    const total = paging.TotalCount || 0;
    failuresTitle.textContent = `Failures of ${state.bizdate}${total ? ` (${total})` : ""}`;
    const table = h(
      "table",
      { id: "failures" },
      h(
        "thead",
        {},
        h("tr", {}, ["Id", "Name", "Workflow", "Type", "FinishedTime", "Duration", "Owner"].map((t) => h("th", { scope: "col" }, t))),
      ),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((it) =>
              h(
                "tr",
                { dataset: { id: it.Id } },
                h("td", {}, instanceLink(it, "fail")),
                h("td", { class: "name" }, it.Name),
                h("td", {}, String(it.WorkflowId)),
                h("td", {}, it.Type),
                h("td", { class: "time" }, formatTime(it.FinishedTime, tz)),
                h("td", { class: "num" }, formatDuration(it.StartedTime, it.FinishedTime)),
                h("td", {}, it.Owner),
              ),
            )
          : h("tr", { class: "empty" }, h("td", { colspan: 7 }, `No failed instances for BizDate ${state.bizdate}.`)),
      ),
    );
    const more = link(listUrl({ status: "Failure", sort: "FinishedTime Desc" }), total > rows.length ? `All ${total} failures` : "Open in the instance list");
    more.dataset.fk = "fail:more";
    clear(failuresBox, h("div", { class: "table-wrap" }, table), total ? h("p", {}, more) : null);
  }

  function drawRunning(paging) {
    const rows = paging.WorkflowInstances || [];
    const total = paging.TotalCount || 0;
    runningTitle.textContent = `Running now${total ? ` (${total})` : ""}`;
    if (!rows.length) {
      clear(runningBox, h("p", { class: "muted", id: "running-empty" }, "Nothing of this BizDate is running."));
      return;
    }
    const more = link(listUrl({ status: "Running,Checking", sort: "StartedTime Asc" }), total > rows.length ? `All ${total} running` : "Open in the instance list");
    more.dataset.fk = "run:more";
    clear(
      runningBox,
      h(
        "ul",
        { class: "running", id: "running" },
        rows.map((it) =>
          h(
            "li",
            { dataset: { id: it.Id } },
            instanceLink(it, "run"),
            " ",
            h("span", { class: "name" }, it.Name),
            " ",
            chip(it.Status),
            " ",
            h("span", { class: "muted" }, `since ${formatTime(it.StartedTime, tz).slice(11) || "—"}, ${formatDuration(it.StartedTime, null)}`),
          ),
        ),
      ),
      h("p", {}, more),
    );
  }

  function drawCounts(day) {
    const counts = shownCounts(day);
    const statuses = [...STATUSES];
    statuses.splice(statuses.indexOf("Success") + 1, 0, DRY);
    for (const s of Object.keys(counts)) if (!statuses.includes(s)) statuses.push(s);
    const all = link(listUrl(), `All ${day.Total || 0} instances`);
    all.dataset.fk = "count:all";
    clear(
      countsBox,
      h(
        "ul",
        { class: "day-counts", id: "day-counts" },
        statuses.map((s) => {
          const n = counts[s] || 0;
          let value = String(n);
          if (n) {
            // The list has no dry-run filter: dry runs are among its successes, marked.
            value = link(listUrl({ status: s === DRY ? "Success" : s }), String(n));
            value.dataset.fk = `count:${s}`;
            value.setAttribute("aria-label", s === DRY ? `${n} dry runs (successes that ran nothing)` : `${n} ${s}`);
          }
          const label = s === DRY ? dryMark("Successes that ran nothing: every task of the instance is a dry run.") : chip(s);
          return h("li", { class: n ? "" : "zero", dataset: { status: s } }, label, " ", value);
        }),
      ),
      h("p", {}, all),
    );
  }

  // --- Auto-refresh: every REFRESH_MS while the day has unfinished instances ----------
  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!alive || !auto || !unfinishedToday) return;
    timer = setTimeout(() => {
      timer = null;
      if (document.visibilityState !== "visible") due = true;
      else load(true);
    }, REFRESH_MS);
  }

  function onVisibility() {
    if (alive && due && document.visibilityState === "visible") load(true);
  }
  document.addEventListener("visibilitychange", onVisibility);

  load(false, firstAnswers);

  return () => {
    alive = false;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}

// The grid step: 1, 2 or 5 times a power of ten, at least `raw` (and at least 1).
function niceStep(raw) {
  if (raw <= 1) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}
