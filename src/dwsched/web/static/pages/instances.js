// The instance list: one workspace's workflow instances of one BizDate, with every filter
// of ListWorkflowInstances, sorting, paging and auto-refresh. The address holds the whole
// query (bookmarkable); the server pages and counts, the page only draws one page of rows.
// The rows come from the console view ListWorkflowInstancesWithDryRuns (ListWorkflowInstances'
// page, each instance marked when it is made only of dry runs). The list opens on recent
// activity (StartedTime Desc: the latest started first, then what has not started), not on
// the API's default Id Desc, which puts the day's future cycles first.
import { call } from "../api.js";
import {
  h,
  clear,
  chip,
  STATUSES,
  finished,
  statusGroup,
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
  today,
  dryMark,
} from "../util.js";

const TYPES = ["Normal", "Manual", "SmokeTest", "SupplementData", "ManualWorkflow", "TriggerWorkflow"];
const SORT_FIELDS = ["TriggerTime", "StartedTime", "FinishedTime", "CreateTime", "Id"];
const SIZES = [10, 20, 50, 100, 200];
const DEFAULT_SIZE = 20;
const REFRESH_MS = 5000;
const DEBOUNCE_MS = 300;
const DEFAULT_SORT = ["StartedTime", "Desc"];
const LIST = "ListWorkflowInstancesWithDryRuns";
const DIGITS = /^\d{1,16}$/; // ids: positive integers a JS number holds exactly
const isId = (v) => DIGITS.test(v) && Number.isSafeInteger(Number(v)) && Number(v) > 0;
const AUTO_KEY = "dwsched.instances.autorefresh";

// The page's state, read from the address; anything malformed falls back to its default.
function readState(tz) {
  const q = query();
  const text = (name) => (q.get(name) || "").trim();
  const day = (name) => (isIsoDay(text(name)) ? text(name) : "");
  const digits = (name) => (isId(text(name)) ? text(name) : "");
  const [field, dir] = text("sort").split(/\s+/);
  const known = SORT_FIELDS.find((f) => f.toLowerCase() === (field || "").toLowerCase());
  const sortField = known || DEFAULT_SORT[0];
  const sortDir = known ? ((dir || "").toLowerCase() === "asc" ? "Asc" : "Desc") : DEFAULT_SORT[1];
  const size = Number(text("size"));
  const wanted = new Set(text("status").split(",").map((s) => s.trim()));
  return {
    bizdate: day("bizdate") || yesterday(tz),
    env: text("env") === "Dev" ? "Dev" : "Prod",
    type: TYPES.includes(text("type")) ? text("type") : "",
    status: STATUSES.filter((s) => wanted.has(s)),
    workflow: digits("workflow"),
    unified: digits("unified"),
    name: text("name"),
    owner: text("owner"),
    tags: text("tags"),
    exec: day("exec"),
    sortField,
    sortDir,
    page: Math.max(1, Number(digits("page")) || 1),
    size: SIZES.includes(size) ? size : DEFAULT_SIZE,
  };
}

function parseTags(text) {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

export async function render(main, ctx) {
  const project = ctx.project;
  const tz = project.TimeZone || "UTC";
  const state = readState(tz);
  let alive = true;
  let seq = 0; // the newest listing request; older answers are dropped
  let items = [];
  let total = 0;
  let timer = null;
  let due = false; // a refresh came due while the tab was hidden
  let debounce = null;
  let workflowNames = new Map();
  let auto = localStorage.getItem(AUTO_KEY) !== "off";
  // Ask for the rows and the workflows at once, before drawing anything: the first paint
  // waits for one round trip only.
  const firstListing = call(LIST, requestParams());
  const firstWorkflows = call("ListWorkflows", { ProjectId: project.Id, EnvType: state.env, PageSize: 100 });

  // --- Address ----------------------------------------------------------------------
  function writeUrl(push = false) {
    setQuery(
      {
        project: project.Id,
        bizdate: state.bizdate,
        env: state.env,
        type: state.type,
        status: state.status.join(","),
        workflow: state.workflow,
        unified: state.unified,
        name: state.name,
        owner: state.owner,
        tags: state.tags,
        exec: state.exec,
        sort: `${state.sortField} ${state.sortDir}`,
        page: state.page,
        size: state.size,
      },
      push,
    );
    overviewLink.setAttribute("href", `/console/overview?${new URLSearchParams({ project: project.Id, bizdate: state.bizdate, env: state.env })}`);
  }

  function requestParams() {
    const filter = {};
    if (state.status.length) filter.status = state.status;
    if (state.exec) filter.executionDate = dayToMs(state.exec, tz);
    const tags = parseTags(state.tags);
    return {
      ProjectId: project.Id,
      BizDate: dayToMs(state.bizdate, tz),
      EnvType: state.env,
      Type: state.type,
      WorkflowId: state.workflow ? Number(state.workflow) : undefined,
      UnifiedWorkflowInstanceId: state.unified ? Number(state.unified) : undefined,
      Name: state.name,
      Owner: state.owner,
      Tags: tags.length ? tags : undefined,
      Filter: Object.keys(filter).length ? filter : undefined,
      SortBy: `${state.sortField} ${state.sortDir}`,
      PageNumber: state.page,
      PageSize: state.size,
    };
  }

  // --- Controls ---------------------------------------------------------------------
  const field = (id, label, control, cls = "") => h("div", { class: `field ${cls}` }, h("label", { for: id }, label), control);

  const bizdate = dayInput({ id: "bizdate", value: state.bizdate, required: true, onchange: () => {
    const day = dayValue(bizdate);
    if (day) apply({ bizdate: day });
  } });
  const showDay = (day) => {
    bizdate.value = day;
    bizdate.check();
    apply({ bizdate: day });
  };
  const shiftDay = (n) => showDay(addDays(state.bizdate, n));
  const env = h(
    "select",
    { id: "filter-env", onchange: () => {
      apply({ env: env.value });
      loadWorkflows();
    } },
    ["Prod", "Dev"].map((v) => h("option", { value: v, selected: v === state.env }, v)),
  );
  const type = h(
    "select",
    { id: "filter-type", onchange: () => apply({ type: type.value }) },
    h("option", { value: "" }, "Any type"),
    TYPES.map((t) => h("option", { value: t, selected: t === state.type }, t)),
  );
  const workflow = h("select", { id: "filter-workflow", onchange: () => apply({ workflow: workflow.value }) });
  fillWorkflows([]);

  const later = (changes) => {
    clearTimeout(debounce);
    debounce = setTimeout(() => apply(changes()), DEBOUNCE_MS);
  };
  const name = h("input", { id: "filter-name", type: "search", value: state.name, placeholder: "part of the name", autocomplete: "off", oninput: () => later(() => ({ name: name.value.trim() })) });
  const owner = h("input", { id: "filter-owner", value: state.owner, placeholder: "account id", autocomplete: "off", size: 12, oninput: () => later(() => ({ owner: owner.value.trim() })) });
  const tags = h("input", { id: "filter-tags", value: state.tags, placeholder: "key:value, key:", autocomplete: "off", size: 16, "aria-describedby": "filter-tags-help", oninput: () => later(() => ({ tags: tags.value.trim() })) });
  const unified = h("input", { id: "filter-unified", type: "number", min: 1, step: 1, value: state.unified, inputmode: "numeric", size: 8, oninput: () => {
    const v = unified.value.trim();
    const ok = v === "" || isId(v);
    if (ok) unified.removeAttribute("aria-invalid");
    else unified.setAttribute("aria-invalid", "true");
    if (ok) later(() => ({ unified: v }));
  } });
  const exec = dayInput({ id: "filter-exec", value: state.exec, onchange: () => {
    const v = exec.value.trim();
    if (v === "" || dayValue(exec)) apply({ exec: v });
  } });

  const statusBoxes = STATUSES.map((s) =>
    h("input", { type: "checkbox", name: "status", id: `status-${s}`, value: s, checked: state.status.includes(s), onchange: () => {
      apply({ status: statusBoxes.filter((b) => b.checked).map((b) => b.value) });
    } }),
  );
  const statusSet = h(
    "fieldset",
    { class: "statuses", id: "statuses" },
    h("legend", {}, "Status"),
    STATUSES.map((s, i) =>
      h("label", { for: `status-${s}`, class: "status-option" }, statusBoxes[i], h("span", { class: `swatch swatch-${statusGroup(s)}`, "aria-hidden": "true" }), s),
    ),
  );

  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter instances", onsubmit: (e) => {
      e.preventDefault();
      flush();
    } },
    h(
      "div",
      { class: "filter-row" },
      dayPicker(bizdate, tz, shiftDay),
      field("filter-env", "Environment", env),
      field("filter-type", "Type", type),
      field("filter-workflow", "Workflow", workflow),
      field("filter-name", "Name", name, "grow"),
      field("filter-owner", "Owner", owner),
      h("div", { class: "field" }, h("label", { for: "filter-tags" }, "Tags"), tags, h("span", { id: "filter-tags-help", class: "visually-hidden" }, "Comma-separated key:value pairs; an instance with any of them matches.")),
      field("filter-unified", "Unified instance id", unified),
      field("filter-exec", "Execution date", exec),
      h("div", { class: "field field-button" }, h("button", { type: "button", id: "reset-filters", onclick: reset }, "Reset filters")),
    ),
    statusSet,
  );

  // --- Results ----------------------------------------------------------------------
  const totalEl = h("span", { id: "total" }, "…");
  const summaryDay = h("span", {}, "");
  const updated = h("span", { id: "updated", class: "muted" });
  const autoBox = h("input", { type: "checkbox", id: "auto-refresh", checked: auto, onchange: () => {
    auto = autoBox.checked;
    localStorage.setItem(AUTO_KEY, auto ? "on" : "off");
    schedule();
  } });
  const errorHolder = h("div", { id: "list-error" });
  const overviewLink = link("/console/overview", "Overview");

  // Cells are drawn often (every refresh, up to 200 rows): plain strings where possible,
  // and times through the zone offset found once per quarter hour.
  const COLUMNS = [
    { title: "Id", sort: "Id", key: (it) => String(it.Id), cell: (it) => link(`/console/instances/${it.Id}?project=${project.Id}`, String(it.Id)) },
    { title: "Name", key: (it) => it.Name, cell: (it) => it.Name, cls: "name" },
    { title: "Workflow", key: (it) => `${it.WorkflowId}|${workflowNames.get(it.WorkflowId) || ""}`, cell: workflowCell },
    { title: "Type", key: (it) => it.Type, cell: (it) => it.Type },
    { title: "Status", key: (it) => `${it.Status}|${it.DryRun ? "dry" : ""}`, cell: (it) => (it.DryRun ? [chip(it.Status), dryMark()] : chip(it.Status)) },
    { title: "BizDate", key: (it) => String(it.BizDate), cell: (it) => time(it.BizDate).slice(0, 10) },
    { title: "TriggerTime", sort: "TriggerTime", key: (it) => String(it.TriggerTime), cell: (it) => time(it.TriggerTime), cls: "time" },
    { title: "StartedTime", sort: "StartedTime", key: (it) => String(it.StartedTime), cell: (it) => time(it.StartedTime), cls: "time" },
    { title: "FinishedTime", sort: "FinishedTime", key: (it) => String(it.FinishedTime), cell: (it) => time(it.FinishedTime), cls: "time" },
    { title: "Duration", key: duration, cell: duration, cls: "num" },
    { title: "CreateTime", sort: "CreateTime", key: (it) => String(it.CreateTime), cell: (it) => time(it.CreateTime), cls: "time" },
    { title: "Owner", key: (it) => `${it.Owner}|${it.OwnerName || ""}`, cell: (it) => (it.OwnerName ? h("span", { title: `account ${it.Owner}` }, it.OwnerName) : it.Owner) },
  ];

  // util.formatTime's answer without its cost per cell: a zone's offset changes on a
  // quarter hour (UTC) at most, so find it once per quarter hour and add it.
  const offsets = new Map();
  function time(ms) {
    if (!ms) return "";
    const bucket = Math.floor(ms / 900000);
    let offset = offsets.get(bucket);
    if (offset === undefined) {
      const at = bucket * 900000;
      offset = Date.parse(`${formatTime(at, tz).replace(" ", "T")}Z`) - at;
      offsets.set(bucket, offset);
    }
    const iso = new Date(ms + offset).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  }

  function duration(it) {
    return formatDuration(it.StartedTime, it.FinishedTime);
  }

  function workflowCell(it) {
    const known = workflowNames.get(it.WorkflowId);
    return known ? [String(it.WorkflowId), " ", h("span", { class: "muted" }, known)] : String(it.WorkflowId);
  }

  const headCells = COLUMNS.map((c) => {
    if (!c.sort) return h("th", { scope: "col", class: c.cls }, c.title);
    const mark = h("span", { class: "sort-mark", "aria-hidden": "true" });
    const th = h("th", { scope: "col", class: `sortable ${c.cls || ""}`, dataset: { sort: c.sort } }, h("button", { type: "button", class: "sort", onclick: () => sortBy(c.sort) }, c.title), mark);
    th.mark = mark;
    return th;
  });
  const tbody = h("tbody");
  const table = h("table", { id: "instances", class: "instances" }, h("caption", { class: "visually-hidden" }, "Workflow instances"), h("thead", {}, h("tr", {}, headCells)), tbody);

  const pageInfo = h("span", { id: "page-info" });
  const pageButton = (label, text, target) => h("button", { type: "button", "aria-label": label, title: label, onclick: () => goPage(target()) }, text);
  const first = pageButton("First page", "«", () => 1);
  const prev = pageButton("Previous page", "‹", () => state.page - 1);
  const next = pageButton("Next page", "›", () => state.page + 1);
  const last = pageButton("Last page", "»", () => lastPage());
  const pageSize = h(
    "select",
    { id: "page-size", onchange: () => apply({ size: Number(pageSize.value) }) },
    SIZES.map((s) => h("option", { value: s, selected: s === state.size }, String(s))),
  );

  clear(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Workflow instances"), h("span", { class: "muted" }, project.Name), overviewLink),
    form,
    h(
      "div",
      { class: "list-bar" },
      h("p", { class: "summary", "aria-live": "polite" }, totalEl, " instances", summaryDay),
      h("span", { class: "refresh" }, h("label", { for: "auto-refresh", class: "check" }, autoBox, "Auto-refresh"), " ", updated),
    ),
    errorHolder,
    h("div", { class: "table-wrap", role: "region", "aria-label": "Instances table", tabindex: 0 }, table),
    h(
      "nav",
      { class: "pager", "aria-label": "Pagination" },
      first,
      prev,
      pageInfo,
      next,
      last,
      h("span", { class: "page-size" }, h("label", { for: "page-size" }, "Rows per page"), " ", pageSize),
    ),
  );
  writeUrl();
  drawSort();
  drawPager();

  // --- Behaviour --------------------------------------------------------------------
  function apply(changes) {
    clearTimeout(debounce);
    debounce = null;
    Object.assign(state, changes, { page: 1 });
    writeUrl();
    load();
  }

  // Enter in a text field: apply what is typed now instead of waiting for the debounce.
  function flush() {
    const v = unified.value.trim();
    apply({ name: name.value.trim(), owner: owner.value.trim(), tags: tags.value.trim(), unified: isId(v) ? v : "" });
  }

  function reset() {
    name.value = owner.value = tags.value = unified.value = exec.value = "";
    exec.check();
    type.value = workflow.value = "";
    for (const b of statusBoxes) b.checked = false;
    apply({ type: "", status: [], workflow: "", unified: "", name: "", owner: "", tags: "", exec: "" });
  }

  function sortBy(fieldName) {
    if (state.sortField === fieldName) state.sortDir = state.sortDir === "Desc" ? "Asc" : "Desc";
    else {
      state.sortField = fieldName;
      state.sortDir = "Desc";
    }
    state.page = 1;
    drawSort();
    writeUrl();
    load();
  }

  function goPage(n) {
    const target = Math.min(Math.max(1, n), lastPage());
    if (target === state.page) return;
    state.page = target;
    writeUrl(true);
    drawPager();
    load();
  }

  function lastPage() {
    return Math.max(1, Math.ceil(total / state.size));
  }

  function drawSort() {
    for (const th of headCells) {
      if (!th.dataset.sort) continue;
      const active = th.dataset.sort === state.sortField;
      if (active) th.setAttribute("aria-sort", state.sortDir === "Asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
      th.mark.textContent = active ? (state.sortDir === "Asc" ? "▲" : "▼") : "";
    }
  }

  function drawPager() {
    const pages = lastPage();
    pageInfo.textContent = `Page ${state.page} of ${pages}`;
    const focused = document.activeElement;
    first.disabled = prev.disabled = state.page <= 1;
    next.disabled = last.disabled = state.page >= pages;
    // A button that just became disabled drops the focus; hand it to its counterpart.
    if (focused && focused.disabled) (focused === first || focused === prev ? next : prev).focus();
  }

  function fillWorkflows(list) {
    const chosen = state.workflow;
    const options = [h("option", { value: "" }, "Any workflow")];
    for (const w of list) options.push(h("option", { value: w.Id }, `${w.Name} (${w.Id})`));
    if (chosen && !list.some((w) => String(w.Id) === chosen)) options.push(h("option", { value: chosen }, `Workflow ${chosen}`));
    clear(workflow, options);
    workflow.value = chosen;
  }

  async function loadWorkflows(pending = null) {
    try {
      const found = await (pending || call("ListWorkflows", { ProjectId: project.Id, EnvType: state.env, PageSize: 100 }));
      if (!alive) return;
      const list = (found.PagingInfo && found.PagingInfo.Workflows) || [];
      workflowNames = new Map(list.map((w) => [w.Id, w.Name]));
      fillWorkflows(list);
      if (items.length) drawRows();
    } catch (e) {
      if (alive) workflow.title = `Workflows could not be listed: ${e.message}`;
    }
  }

  async function load(quiet = false, pending = null) {
    const mine = ++seq;
    clearTimeout(timer);
    timer = null;
    due = false;
    if (!quiet) table.setAttribute("aria-busy", "true");
    try {
      const found = await (pending || call(LIST, requestParams()));
      if (!alive || mine !== seq) return;
      const paging = found.PagingInfo || {};
      items = paging.WorkflowInstances || [];
      total = paging.TotalCount || 0;
      clear(errorHolder);
      if (!items.length && total > 0 && state.page > lastPage()) {
        // The list shrank under us (or a bookmarked page is gone): show its last page.
        state.page = lastPage();
        writeUrl();
        load(quiet);
        return;
      }
      totalEl.textContent = String(total);
      summaryDay.textContent = ` for BizDate ${state.bizdate} (${state.env})`;
      drawRows();
      drawPager();
      updated.textContent = `updated ${formatTime(Date.now(), tz).slice(11)}`;
      // When the rows are in the table (read by bench/console_list.py): since navigation
      // for the first load, then per listing.
      performance.mark("dwsched:instances-shown");
    } catch (e) {
      if (!alive || mine !== seq) return;
      if (quiet) updated.textContent = `refresh failed: ${e.message}`;
      else {
        clear(errorHolder, errorBox(e));
        items = [];
        total = 0;
        totalEl.textContent = "0";
        drawRows(true);
        drawPager();
      }
    } finally {
      if (alive && mine === seq) {
        table.removeAttribute("aria-busy");
        schedule();
      }
    }
  }

  function drawRows(failed = false) {
    if (!items.length) {
      clear(tbody, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, failed ? "The instances could not be listed." : emptyText())));
      return;
    }
    const rows = tbody.rows;
    const same = rows.length === items.length && items.every((it, i) => rows[i].dataset.id === String(it.Id));
    if (same) {
      // Same rows in the same order: touch only the cells whose value changed, so focus,
      // selection and scroll stay where they are.
      items.forEach((it, i) => {
        const cells = rows[i].cells;
        COLUMNS.forEach((c, j) => {
          const k = c.key(it) ?? "";
          if (cells[j].k !== k) fillCell(cells[j], k, c.cell(it));
        });
        rows[i].className = finished(it.Status) ? "" : "unfinished";
      });
      return;
    }
    const active = document.activeElement;
    const activeRow = active && tbody.contains(active) ? active.closest("tr") : null;
    const focusAt = activeRow ? [activeRow.dataset.id, active.closest("td") ? active.closest("td").cellIndex : 0] : null;
    const fresh = document.createDocumentFragment();
    for (const it of items) {
      const tr = document.createElement("tr");
      tr.dataset.id = it.Id;
      if (!finished(it.Status)) tr.className = "unfinished";
      for (const c of COLUMNS) {
        const td = document.createElement("td");
        if (c.cls) td.className = c.cls;
        fillCell(td, c.key(it) ?? "", c.cell(it));
        tr.append(td);
      }
      fresh.append(tr);
    }
    tbody.replaceChildren(fresh);
    if (focusAt) {
      const row = tbody.querySelector(`tr[data-id="${CSS.escape(focusAt[0])}"]`);
      const target = row && row.cells[focusAt[1]] && row.cells[focusAt[1]].querySelector("a, button");
      if (target) target.focus({ preventScroll: true });
    }
  }

  // Nothing listed. For today's BizDate (or a later one) say why: a day's runs carry the
  // BizDate before it (T-1), so what runs today is listed under yesterday's.
  function emptyText() {
    const plain = `No instances match these filters for BizDate ${state.bizdate}.`;
    const now = today(tz);
    if (state.bizdate < now) return plain;
    const previous = addDays(now, -1);
    return [
      plain,
      h(
        "p",
        { class: "empty-hint", id: "empty-hint" },
        `Runs carry the BizDate before their run date (T-1): today's runs (${now}) are listed under BizDate ${previous}.`,
        h("button", { type: "button", id: "show-yesterday", onclick: () => showDay(previous) }, `Show BizDate ${previous}`),
      ),
    ];
  }

  // A cell's content (text as text, never markup) and the key it was drawn from.
  function fillCell(td, key, content) {
    td.k = key;
    if (typeof content === "string") td.textContent = content;
    else clear(td, content);
  }

  // --- Auto-refresh: every REFRESH_MS while this page shows unfinished instances -----
  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!alive || !auto || !items.some((it) => !finished(it.Status))) return;
    timer = setTimeout(tick, REFRESH_MS);
  }

  function tick() {
    timer = null;
    if (document.visibilityState !== "visible") {
      due = true;
      return;
    }
    load(true);
  }

  function onVisibility() {
    if (document.visibilityState === "visible" && due && alive) load(true);
  }
  document.addEventListener("visibilitychange", onVisibility);

  load(false, firstListing);
  loadWorkflows(firstWorkflows);

  return () => {
    alive = false;
    clearTimeout(timer);
    clearTimeout(debounce);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}

