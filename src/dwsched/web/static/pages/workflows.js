// Deployed workflows (the console view ListWorkflowsOverview): trigger, next run times in
// the workflow's zone, the latest instances, the FlowSpec; Backfill… for scheduled
// workflows, Run… for manual and trigger workflows. An instance made only of dry runs is
// marked, and the last days' successes are counted apart from the dry runs.
import { call } from "../api.js";
import { h, clear, chip, dryMark, errorBox, formatTime, formatDate, toast, query, setQuery, dialog } from "../util.js";
import { openBackfill } from "./backfill.js";

const PAGE_SIZE = 20;
const RESULT_MS = 500;

export async function render(main, ctx) {
  const project = ctx.project;
  const q = query();
  let name = q.get("name") || "";
  let pageNumber = Math.max(1, Number(q.get("page")) || 1);
  let ticket = 0;
  let alive = true;
  let backfill = null;
  const timers = new Set();

  const search = h("input", { id: "workflow-search", type: "search", value: name, autocomplete: "off", placeholder: "part of a name" });
  const form = h(
    "form",
    {
      class: "wf-toolbar",
      role: "search",
      onsubmit: (e) => {
        e.preventDefault();
        name = search.value.trim();
        pageNumber = 1;
        load(true);
      },
    },
    h("div", { class: "wf-field" }, h("label", { for: "workflow-search" }, "Name"), search),
    h("button", { type: "submit" }, "Search"),
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          search.value = "";
          name = "";
          pageNumber = 1;
          load(true);
        },
      },
      "Clear",
    ),
  );
  const status = h("p", { class: "note", role: "status", "aria-live": "polite" });
  const body = h("div", { class: "workflows-body" });
  const pager = h("nav", { class: "wf-pager", "aria-label": "Pages of workflows" });
  clear(
    main,
    h("h1", {}, "Workflows"),
    h("p", { class: "muted" }, `Deployed workflows of ${project.Name} (${project.Id}). Next run times are in each workflow's time zone.`),
    form,
    status,
    body,
    pager,
  );
  document.title = "Workflows · dwsched";

  async function load(push = false) {
    const mine = ++ticket;
    setQuery({ project: project.Id, name, page: pageNumber > 1 ? pageNumber : "" }, push);
    status.textContent = "Loading…";
    let found;
    try {
      found = await call("ListWorkflowsOverview", { ProjectId: project.Id, PageNumber: pageNumber, PageSize: PAGE_SIZE, Name: name || undefined });
    } catch (e) {
      if (!alive || mine !== ticket) return;
      status.textContent = "";
      clear(body, errorBox(e));
      clear(pager);
      return;
    }
    if (!alive || mine !== ticket) return;
    const info = found.PagingInfo;
    const items = info.Workflows || [];
    const pages = Math.max(1, Math.ceil(info.TotalCount / PAGE_SIZE));
    status.textContent = `${info.TotalCount} workflow${info.TotalCount === 1 ? "" : "s"}${name ? ` matching “${name}”` : ""}.`;
    if (!items.length) {
      clear(body, h("table", { id: "workflows" }, h("caption", { class: "sr-only" }, "Workflows")), h("p", { class: "muted" }, name ? "No workflow has this name." : "No workflow is deployed in this workspace."));
    } else {
      clear(body, table(items, found.TimeZone));
    }
    drawPager(pages);
  }

  // "7 days: 3 ✓ success · 430 dry runs · 1 ✕ failure · 2 unfinished": successes that ran
  // nothing are not counted as successes.
  function recentTally(w) {
    const counts = w.RecentCounts || {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    if (!total) return null;
    const dry = w.RecentDryRuns || 0;
    const success = (counts.Success || 0) - dry;
    const failure = counts.Failure || 0;
    const other = total - success - dry - failure;
    const parts = [`${success} ✓ success`];
    if (dry) parts.push(`${dry} dry run${dry === 1 ? "" : "s"}`);
    if (failure) parts.push(`${failure} ✕ failure${failure === 1 ? "" : "s"}`);
    if (other) parts.push(`${other} unfinished`);
    return h("div", { class: "note recent-tally", title: "Instances of the last 7 BizDates due by now; a dry run (every task a dry run) ran nothing." }, `7 days: ${parts.join(" · ")}`);
  }

  function drawPager(pages) {
    const go = (n) => {
      pageNumber = n;
      load(true);
    };
    clear(
      pager,
      h("button", { type: "button", disabled: pageNumber <= 1, onclick: () => go(pageNumber - 1) }, "Previous"),
      h("span", {}, `Page ${pageNumber} of ${pages}`),
      h("button", { type: "button", disabled: pageNumber >= pages, onclick: () => go(pageNumber + 1) }, "Next"),
    );
    if (pages <= 1) pager.hidden = true;
    else pager.hidden = false;
  }

  function table(items, workspaceTz) {
    const rows = [];
    for (const w of items) {
      const tz = w.TimeZone || workspaceTz;
      const trigger = w.Trigger || {};
      const scheduled = trigger.Type === "Scheduler" && trigger.Cron;
      const runType = trigger.Type === "Manual" ? "ManualWorkflow" : trigger.Type === "TriggerWorkflow" ? "TriggerWorkflow" : null;
      rows.push(
        h(
          "tr",
          { dataset: { workflowId: String(w.Id) } },
          h(
            "td",
            {},
            h("div", { class: "wf-name", id: `wf-name-${w.Id}` }, w.Name),
            h("div", { class: "muted" }, `Id ${w.Id}`),
            w.Description ? h("div", { class: "wf-desc" }, w.Description) : null,
          ),
          h(
            "td",
            {},
            scheduled ? [h("div", {}, "Scheduled"), h("code", {}, trigger.Cron)] : h("div", {}, trigger.Type === "TriggerWorkflow" ? "Triggered (TriggerWorkflow)" : "Manual"),
          ),
          h(
            "td",
            {},
            (w.NextRunTimes || []).length
              ? [
                  h("ul", { class: "runs", "aria-label": `Next runs of ${w.Name} in ${tz}` }, w.NextRunTimes.map((t) => h("li", {}, formatTime(t, tz)))),
                  h("div", { class: "note" }, tz),
                ]
              : h("span", { class: "muted" }, "—"),
          ),
          h(
            "td",
            {},
            (w.LatestInstances || []).length
              ? h(
                  "div",
                  { class: "latest" },
                  w.LatestInstances.map((i) =>
                    h(
                      "a",
                      {
                        href: `/console/instances/${i.Id}?project=${project.Id}`,
                        "data-nav": true,
                        "aria-label": `Instance ${i.Id}, ${i.Status}${i.DryRun ? " (dry run)" : ""}, BizDate ${formatDate(i.BizDate, workspaceTz)}`,
                        title: `Instance ${i.Id} · BizDate ${formatDate(i.BizDate, workspaceTz)} · trigger ${formatTime(i.TriggerTime, workspaceTz)} · ${i.Status}${i.DryRun ? " · dry run: nothing ran" : ""}`,
                        dataset: { dryRun: i.DryRun ? "true" : "false" },
                      },
                      h("span", { class: "when" }, formatTime(i.TriggerTime, workspaceTz).slice(5, 16)),
                      chip(i.Status),
                      i.DryRun ? dryMark() : null,
                    ),
                  ),
                )
              : h("span", { class: "muted" }, "none in the last 7 days"),
            recentTally(w),
          ),
          h("td", {}, w.Owner || ""),
          h(
            "td",
            { class: "actions" },
            scheduled
              ? h(
                  "button",
                  {
                    type: "button",
                    "aria-describedby": `wf-name-${w.Id}`,
                    onclick: () => {
                      backfill = openBackfill(ctx, w);
                    },
                  },
                  "Backfill…",
                )
              : null,
            runType ? h("button", { type: "button", "aria-describedby": `wf-name-${w.Id}`, onclick: () => runWorkflow(w, runType) }, "Run…") : null,
          ),
        ),
        h("tr", { class: "spec-row" }, h("td", { colspan: "6" }, specDetails(w))),
      );
    }
    return h(
      "table",
      { id: "workflows" },
      h("caption", { class: "sr-only" }, "Deployed workflows"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Workflow", "Trigger", "Next runs", "Latest instances", "Owner", "Actions"].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h("tbody", {}, rows),
    );
  }

  function specDetails(w) {
    const pre = h("pre", { tabindex: "0", "aria-label": `FlowSpec of ${w.Name}` });
    const details = h("details", {}, h("summary", {}, `FlowSpec of ${w.Name}`), pre);
    // Fetched when opened, with GetWorkflowDefinition: a user whose policy denies reading
    // workflow code sees the refusal, not the code.
    details.addEventListener("toggle", async () => {
      if (!details.open || pre.textContent) return;
      pre.textContent = "Loading…";
      try {
        const found = await call("GetWorkflowDefinition", { Id: w.DefinitionId, ProjectId: ctx.project.Id });
        let text = found.WorkflowDefinition.Spec || "";
        try {
          text = JSON.stringify(JSON.parse(text), null, 2);
        } catch {}
        pre.textContent = text || "(no FlowSpec stored)";
      } catch (e) {
        pre.textContent = "";
        details.replaceChildren(details.firstChild, errorBox(e));
      }
    });
    return details;
  }

  // Run…: one instance of a manual (ManualWorkflow) or trigger (TriggerWorkflow) workflow.
  async function runWorkflow(w, type) {
    const input = h("input", { id: "run-name", type: "text", value: `run ${w.Name}`, maxlength: "512" });
    const chosen = await dialog(
      `Run ${w.Name}`,
      [
        h("p", {}, `Create a ${type} instance of workflow ${w.Name} (${w.Id}) now, for yesterday's BizDate.`),
        h("label", { for: "run-name" }, "Name "),
        input,
      ],
      [
        { label: "Cancel", value: false },
        { label: "Confirm", value: true, primary: true },
      ],
    );
    if (!chosen) return;
    try {
      const op = (
        await call("CreateWorkflowInstances", {
          ProjectId: project.Id,
          WorkflowId: w.Id,
          Type: type,
          Name: input.value.trim() || `run ${w.Name}`,
          EnvType: w.EnvType,
        })
      ).OperationId;
      const poll = async () => {
        if (!alive) return;
        const result = (await call("GetCreateWorkflowInstancesResult", { OperationId: op })).Result;
        if (result.Status === "Creating") {
          const t = setTimeout(() => {
            timers.delete(t);
            poll().catch((e) => toast(e.message, "error"));
          }, RESULT_MS);
          timers.add(t);
          return;
        }
        if (result.Status !== "Created") {
          toast(`Run ${w.Name}: ${result.FailureMessage || result.Status}`, "error");
          return;
        }
        const id = result.WorkflowInstanceIds[0];
        toast(`Run ${w.Name}: instance ${id} created.`);
        if (id && alive) ctx.navigate(`/console/instances/${id}?project=${project.Id}`);
      };
      await poll();
    } catch (e) {
      toast(`Run ${w.Name}: ${e.message}`, "error");
    }
  }

  await load(false);
  return () => {
    alive = false;
    for (const t of timers) clearTimeout(t);
    if (backfill) backfill.close();
  };
}
