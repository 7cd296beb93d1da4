// The backfill dialog (CreateWorkflowInstances Type SupplementData): choose tasks, BizDate
// ranges, parallelism and order; see what it will create as you edit (the console view
// GetCreateWorkflowInstancesPlan, the server's own planning); create it; then follow the
// created instances until all have finished. Closing the dialog stops the polling (the
// backfill itself goes on).
import { call } from "../api.js";
import { h, clear, chip, statusGroup, finished, yesterday, today, dayToMs, errorBox, toast, link, dayInput, dayValue } from "../util.js";

const MAX_RANGES = 7;
const PLAN_DELAY_MS = 350;
const RESULT_MS = 500;
const PROGRESS_MS = 2000;
const IDS_PER_CALL = 100;
const LINKS_SHOWN = 200;

// openBackfill(ctx, workflow) -> {close()}: `workflow` is a ListWorkflows/GetWorkflow item
// (Id, Name, ProjectId, EnvType); ctx.project gives the workspace and its time zone.
export function openBackfill(ctx, workflow) {
  const old = document.getElementById("backfill");
  if (old) old.close();
  const project = ctx.project;
  const tz = project.TimeZone || "UTC";
  const projectId = workflow.ProjectId || project.Id;
  const env = workflow.EnvType || undefined;
  const last = yesterday(tz);
  const timers = new Set();
  let alive = true;
  let planTicket = 0;
  let planOk = false;
  let plan = null;
  let tasks = [];
  let nameEdited = false;

  const later = (fn, ms) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (alive) fn();
    }, ms);
    timers.add(t);
    return t;
  };

  // --- The form -----------------------------------------------------------------------------
  const nameInput = h("input", { id: "backfill-name", type: "text", maxlength: "512", autocomplete: "off", required: true });
  nameInput.addEventListener("input", () => {
    nameEdited = nameInput.value.trim() !== "";
    schedulePlan();
  });
  const taskBox = h("div", { class: "bf-tasks", role: "group", "aria-label": "Tasks" }, h("p", { class: "loading" }, "Loading tasks…"));
  const allButton = h("button", { type: "button", onclick: () => setAll(true) }, "All tasks");
  const noneButton = h("button", { type: "button", onclick: () => setAll(false) }, "No task");
  const taskCount = h("span", { class: "note", "aria-live": "polite" });
  const rangesBox = h("div", { class: "bf-ranges" });
  const addRange = h("button", { type: "button", onclick: () => addRow(last, last, true) }, "Add range");
  const parallelism = h("input", { id: "parallelism", type: "number", min: "1", max: "10", step: "1", value: "1", required: true });
  const order = h(
    "select",
    { id: "order" },
    h("option", { value: "Asc" }, "Asc (oldest BizDate first)"),
    h("option", { value: "Desc" }, "Desc (newest BizDate first)"),
  );
  const planBox = h("div", { id: "plan", role: "status", "aria-live": "polite" }, "Checking…");
  const createButton = h("button", { type: "button", class: "primary", disabled: true, onclick: () => create() }, "Create backfill");
  const closeButton = h("button", { type: "button", onclick: () => dialog.close() }, "Close");
  const form = h(
    "fieldset",
    { class: "bf-form" },
    h("legend", { class: "sr-only" }, "Backfill settings"),
    h(
      "div",
      { class: "bf-grid" },
      h("span", { class: "muted" }, "Workflow"),
      h("strong", {}, `${workflow.Name} (${workflow.Id})`),
      h("label", { for: "backfill-name" }, "Name"),
      nameInput,
    ),
    h("fieldset", {}, h("legend", {}, "Tasks"), h("div", { class: "bf-tools" }, allButton, noneButton, taskCount), taskBox),
    h(
      "fieldset",
      {},
      h("legend", {}, `BizDate ranges (up to ${MAX_RANGES}, in ${tz}, up to today)`),
      rangesBox,
      addRange,
    ),
    h(
      "div",
      { class: "bf-row" },
      h("div", { class: "bf-field" }, h("label", { for: "parallelism" }, "Parallelism"), parallelism, h("span", { class: "note" }, "BizDates at once (1–10)")),
      h("div", { class: "bf-field" }, h("label", { for: "order" }, "Order"), order),
    ),
  );
  const progressBox = h("div", { class: "bf-progress", hidden: true });
  const dialog = h(
    "dialog",
    { id: "backfill", class: "dialog backfill", "aria-labelledby": "backfill-title" },
    h("h2", { id: "backfill-title" }, `Backfill ${workflow.Name}`),
    form,
    planBox,
    progressBox,
    h("div", { class: "dialog-buttons" }, closeButton, createButton),
  );
  for (const el of [parallelism, order]) {
    el.addEventListener("input", schedulePlan);
    el.addEventListener("change", schedulePlan);
  }
  dialog.addEventListener("close", () => {
    alive = false;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
  addRow(last, last, false);
  nameInput.focus();
  loadTasks();

  // --- Tasks ------------------------------------------------------------------------------
  async function loadTasks() {
    try {
      const found = (await call("GetWorkflow", { Id: workflow.Id })).Workflow;
      if (!alive) return;
      tasks = found.Tasks || [];
      clear(
        taskBox,
        tasks.map((t) => {
          const id = `bf-task-${t.Id}`;
          const box = h("input", { type: "checkbox", id, checked: true, value: String(t.Id), onchange: schedulePlan });
          return h("label", { for: id }, box, `${t.Name} `, h("span", { class: "muted" }, `(${t.Id})`));
        }),
      );
      if (!tasks.length) clear(taskBox, h("p", { class: "note" }, "This workflow has no tasks."));
    } catch (e) {
      if (!alive) return;
      tasks = [];
      clear(taskBox, errorBox(e), h("p", { class: "note" }, "Without the task list, the whole workflow is backfilled."));
    }
    schedulePlan();
  }

  function setAll(on) {
    for (const box of taskBox.querySelectorAll("input[type=checkbox]")) box.checked = on;
    schedulePlan();
  }

  function chosenTasks() {
    const boxes = [...taskBox.querySelectorAll("input[type=checkbox]")];
    return { all: boxes.every((b) => b.checked), ids: boxes.filter((b) => b.checked).map((b) => Number(b.value)), total: boxes.length };
  }

  // --- Date ranges ----------------------------------------------------------------------------
  function addRow(start, end, focus) {
    const rows = rangesBox.children.length;
    if (rows >= MAX_RANGES) return;
    const startId = `range-start-${rows}`;
    const endId = `range-end-${rows}`;
    const max = today(tz);
    // ISO dates (YYYY-MM-DD) as everywhere in the console, not the browser's locale.
    const startInput = dayInput({ id: startId, value: start, max, required: true, class: "day-input range-start" });
    const endInput = dayInput({ id: endId, value: end, max, required: true, class: "day-input range-end" });
    const remove = h("button", { type: "button", class: "remove-range", onclick: () => removeRow(row) }, "Remove");
    const row = h(
      "div",
      { class: "bf-range", role: "group" },
      h("label", { for: startId }, "Start BizDate"),
      startInput,
      h("label", { for: endId }, "End BizDate"),
      endInput,
      remove,
    );
    for (const el of [startInput, endInput]) {
      el.addEventListener("input", schedulePlan);
      el.addEventListener("change", schedulePlan);
    }
    rangesBox.append(row);
    paintRows();
    if (focus) startInput.focus();
    schedulePlan();
  }

  function removeRow(row) {
    if (rangesBox.children.length <= 1) return;
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    paintRows();
    if (next) next.querySelector("input").focus();
    schedulePlan();
  }

  function paintRows() {
    const rows = [...rangesBox.children];
    // Ids follow the rows' positions: range-start-0 / range-end-0 is always the first.
    rows.forEach((row, i) => {
      row.setAttribute("aria-label", `BizDate range ${i + 1}`);
      const [startLabel, endLabel] = row.querySelectorAll("label");
      row.querySelector(".range-start").id = `range-start-${i}`;
      row.querySelector(".range-end").id = `range-end-${i}`;
      startLabel.htmlFor = `range-start-${i}`;
      endLabel.htmlFor = `range-end-${i}`;
      const remove = row.querySelector(".remove-range");
      remove.disabled = rows.length <= 1;
      remove.setAttribute("aria-label", `Remove BizDate range ${i + 1}`);
    });
    addRange.disabled = rows.length >= MAX_RANGES;
  }

  function ranges() {
    return [...rangesBox.children].map((row) => ({
      StartBizDate: dayValue(row.querySelector(".range-start")),
      EndBizDate: dayValue(row.querySelector(".range-end")),
    }));
  }

  function datesText(list) {
    return list.map((r) => (r.StartBizDate === r.EndBizDate ? r.StartBizDate : `${r.StartBizDate}..${r.EndBizDate}`)).join(", ");
  }

  // --- The request and its plan ---------------------------------------------------------------
  // The parameters, or a string saying what is missing.
  function request() {
    const list = ranges();
    if (list.some((r) => !r.StartBizDate || !r.EndBizDate)) return `Enter a start and an end BizDate for every range, as YYYY-MM-DD (${today(tz)} at the latest).`;
    if (!nameEdited) nameInput.value = `backfill ${workflow.Name} ${datesText(list)}`.slice(0, 512);
    const name = nameInput.value.trim();
    if (!name) return "Give the backfill a name.";
    const p = Number(parallelism.value);
    if (!Number.isInteger(p) || p < 1 || p > 10) return "Parallelism must be a whole number from 1 to 10.";
    const props = { Parallelism: p, Order: order.value };
    const chosen = chosenTasks();
    if (chosen.total && !chosen.ids.length) return "Choose at least one task.";
    if (chosen.total && !chosen.all) {
      // ManualSelection: exactly the chosen tasks run; the others are SkipUnchoose dry runs.
      props.Mode = "ManualSelection";
      props.IncludeTaskIds = chosen.ids;
    }
    taskCount.textContent = chosen.total ? `${chosen.ids.length} of ${chosen.total} tasks run; the others are dry runs.` : "";
    if (chosen.all) taskCount.textContent = chosen.total ? `All ${chosen.total} tasks run.` : "";
    return {
      ProjectId: projectId,
      WorkflowId: workflow.Id,
      Type: "SupplementData",
      Name: name,
      EnvType: env,
      Periods: { BizDates: list },
      DefaultRunProperties: props,
    };
  }

  function schedulePlan() {
    if (!alive) return;
    // A change event after the input event of the same edit (the field losing focus, e.g.
    // to the Create button) asks nothing new: keep the plan, so that the click goes through.
    if (planOk && plan && JSON.stringify(request()) === JSON.stringify(plan.params)) return;
    planOk = false;
    createButton.disabled = true;
    const ticket = ++planTicket;
    planBox.classList.remove("bad");
    clear(planBox, "Checking what this creates…");
    later(() => runPlan(ticket), PLAN_DELAY_MS);
  }

  async function runPlan(ticket) {
    if (ticket !== planTicket) return;
    const params = request();
    if (typeof params === "string") {
      planBox.classList.add("bad");
      clear(planBox, params);
      return;
    }
    try {
      const found = await call("GetCreateWorkflowInstancesPlan", params);
      if (!alive || ticket !== planTicket) return;
      plan = { params, found };
      planOk = found.Count > 0;
      const days = found.BizDates || [];
      clear(
        planBox,
        h("strong", {}, `This will create ${found.Count} instance(s)`),
        ` for ${days.length} BizDate${days.length === 1 ? "" : "s"}, ${params.DefaultRunProperties.Parallelism} at a time (${params.DefaultRunProperties.Order === "Desc" ? "newest" : "oldest"} first).`,
        h(
          "ul",
          { "aria-label": "Instances per BizDate" },
          days.map((d) => h("li", {}, `${d.Date}: ${d.Count}`)),
        ),
      );
      createButton.disabled = !planOk;
    } catch (e) {
      if (!alive || ticket !== planTicket) return;
      planBox.classList.add("bad");
      clear(planBox, h("strong", {}, "Cannot create: "), e.message);
    }
  }

  // --- Creating, then following -----------------------------------------------------------
  async function create() {
    if (!planOk || !plan) return;
    const { params, found } = plan;
    form.disabled = true;
    createButton.disabled = true;
    createButton.textContent = "Creating…";
    progressBox.hidden = false;
    clear(progressBox, h("p", { role: "status" }, "Creating the instances…"));
    let operation;
    try {
      operation = (await call("CreateWorkflowInstances", params)).OperationId;
    } catch (e) {
      return failed(e);
    }
    const poll = async () => {
      let result;
      try {
        result = (await call("GetCreateWorkflowInstancesResult", { OperationId: operation })).Result;
      } catch (e) {
        return failed(e);
      }
      if (!alive) return;
      if (result.Status === "Creating") {
        later(poll, RESULT_MS);
        return;
      }
      if (result.Status !== "Created") {
        return failed({ code: result.Status, message: result.FailureMessage || "The backfill was not created." });
      }
      createButton.textContent = "Created";
      form.hidden = true;
      toast(`Backfill created: ${result.WorkflowInstanceIds.length} instance(s).`);
      follow(result, found);
    };
    later(poll, RESULT_MS);
  }

  function failed(e) {
    if (!alive) return;
    clear(progressBox, errorBox(e));
    form.disabled = false;
    createButton.textContent = "Create backfill";
    schedulePlan();
  }

  // The created instances, grouped by BizDate: each group starts at its unified id (the
  // first id of its BizDate); BizDates in the plan's order, which is the run order.
  function groups(result, found) {
    const unified = new Set(result.UnifiedWorkflowInstanceIds || []);
    const out = [];
    for (const id of result.WorkflowInstanceIds) {
      if (!out.length || unified.has(id)) out.push({ ids: [] });
      out[out.length - 1].ids.push(id);
    }
    const days = found.BizDates || [];
    const fits = days.length === out.length && days.every((d, i) => d.Count === out[i].ids.length);
    out.forEach((g, i) => {
      g.date = fits ? days[i].Date : null;
    });
    return out;
  }

  async function follow(result, found) {
    const total = result.WorkflowInstanceIds.length;
    const statuses = new Map(result.WorkflowInstanceIds.map((id) => [id, "NotRun"]));
    const names = new Map();
    const byDay = groups(result, found);
    for (const g of byDay) {
      if (g.date) continue;
      try {
        const first = (await call("GetWorkflowInstance", { Id: g.ids[0] })).WorkflowInstance;
        g.bizDate = first.BizDate;
      } catch {}
    }
    const bar = h("div", { class: "bar-stack", role: "img" });
    const text = h("p", { class: "progress-text" });
    const list = h("div", { class: "bf-days" });
    clear(
      progressBox,
      h(
        "div",
        { id: "backfill-progress", role: "status", "aria-live": "polite" },
        h("h3", {}, "Progress"),
        text,
        bar,
      ),
      list,
      h("p", { class: "note" }, "Closing this dialog stops watching; the backfill goes on."),
    );
    const tick = async () => {
      if (!alive) return;
      try {
        for (const g of byDay) {
          const open = g.ids.filter((id) => !finished(statuses.get(id)));
          const bizDate = g.date ? dayToMs(g.date, tz) : g.bizDate;
          if (!bizDate) continue;
          for (let i = 0; i < open.length; i += IDS_PER_CALL) {
            const chunk = open.slice(i, i + IDS_PER_CALL);
            const page = await call("ListWorkflowInstances", {
              ProjectId: projectId,
              BizDate: bizDate,
              EnvType: env,
              Ids: chunk,
              PageSize: IDS_PER_CALL,
            });
            if (!alive) return;
            for (const w of page.PagingInfo.WorkflowInstances || []) {
              statuses.set(w.Id, w.Status);
              names.set(w.Id, w.Name);
            }
          }
        }
      } catch (e) {
        if (!alive) return;
        text.textContent = `Progress cannot be read: ${e.message}; trying again.`;
        later(tick, PROGRESS_MS);
        return;
      }
      const counts = { success: 0, running: 0, waiting: 0, failure: 0 };
      for (const s of statuses.values()) counts[statusGroup(s)] += 1;
      const done = counts.success;
      const summary = `${done}/${total} done, ${counts.running} running, ${counts.waiting} waiting, ${counts.failure} failed`;
      const over = counts.success + counts.failure === total;
      text.textContent = over ? `Finished: ${summary}.` : `${summary}.`;
      bar.setAttribute("aria-label", summary);
      clear(
        bar,
        ["success", "running", "waiting", "failure"].map((k) => {
          const seg = h("span", { class: `bfseg-${k}`, title: `${counts[k]} ${k}` });
          seg.style.width = `${(counts[k] / total) * 100}%`;
          return seg;
        }),
      );
      drawLinks(list, byDay, statuses);
      if (!over) later(tick, PROGRESS_MS);
    };
    tick();
  }

  function listLink(href, text) {
    const a = link(href, text);
    a.classList.add("list-link");
    a.addEventListener("click", () => dialog.close());
    return a;
  }

  function drawLinks(list, byDay, statuses) {
    let shown = 0;
    clear(
      list,
      byDay.map((g, i) => {
        const failedHere = g.ids.filter((id) => statuses.get(id) === "Failure").length;
        const doneHere = g.ids.filter((id) => statuses.get(id) === "Success").length;
        const items = [];
        for (const id of g.ids) {
          if (shown >= LINKS_SHOWN) break;
          shown += 1;
          const a = link(`/console/instances/${id}?project=${projectId}`, String(id));
          a.addEventListener("click", () => dialog.close());
          items.push(h("li", {}, a, chip(statuses.get(id))));
        }
        return [
          h(
            "h4",
            {},
            `${g.date || `BizDate ${i + 1}`}: ${doneHere}/${g.ids.length} done${failedHere ? `, ${failedHere} failed` : ""} `,
            g.date ? listLink(`/console/instances?project=${projectId}&bizdate=${g.date}&unified=${g.ids[0]}`, "in the instance list") : null,
          ),
          items.length ? h("ul", {}, items) : null,
        ];
      }),
      shown < statuses.size ? h("p", { class: "note" }, `Links shown for the first ${shown} of ${statuses.size} instances.`) : null,
    );
  }
  return {
    close() {
      if (dialog.open) dialog.close();
    },
  };
}
