// One workflow instance: its facts, its task DAG (with the upstreams its tasks wait for in
// other workflows' instances and in previous cycles), a timeline of every attempt, the
// chosen task's attempts, dependencies and log (followed live), and the operations on tasks
// and on the instance. Refreshes every 3 s while anything is unfinished (visible tab only),
// keeping the chosen task, the scroll and the followed log.
import { call } from "../api.js";
import {
  h,
  clear,
  chip,
  dryMark,
  statusGroup,
  statusMark,
  finished,
  formatTime,
  formatDate,
  formatDuration,
  errorBox,
  toast,
  confirmDialog,
  dialog,
  link,
  query,
  setQuery,
} from "../util.js";
import { openBackfill } from "./backfill.js";
import { REMOVABLE, MAX_LINKED_TASKS, boxLines, dependencyText, externalGraph, instanceUrl, kindLabel, linksToFetch, outside } from "./links.js";

const REFRESH_MS = 3000;
const FOLLOW_MS = 1000;
const PAGE_SIZE = 100;
const MAX_PAGES = 50; // 5,000 task instances: beyond any real workflow
const MIN_MARK = 8; // px: the narrowest attempt mark on the timeline
const HISTORY_CALLS = 6; // attempt histories (and task upstreams) fetched at once
const LINK_PAGES = 20; // 2,000 upstreams of one task instance: beyond any real node

// What each task operation needs: the statuses it applies to (the server still judges).
const WAITING = new Set(["NotRun", "WaitTime", "WaitResource", "WaitTrigger"]);
const TASK_OPS = [
  {
    label: "Rerun",
    action: "RerunTaskInstances",
    allowed: (t) => finished(t.Status),
    verb: "Rerun",
    detail: "It runs again as a new attempt; its earlier attempts and logs stay.",
  },
  {
    label: "Stop",
    action: "StopTaskInstances",
    allowed: (t) => !finished(t.Status),
    verb: "Stop",
    detail: "A running attempt is killed and the task instance ends Failure.",
  },
  {
    label: "Set success",
    action: "SetSuccessTaskInstances",
    allowed: (t) => t.Status === "Failure" || WAITING.has(t.Status),
    verb: "Set to Success",
    detail: "Its downstream tasks then run.",
  },
  {
    label: "Suspend",
    action: "SuspendTaskInstances",
    allowed: (t) => WAITING.has(t.Status) && t.OperationType !== "Suspend",
    verb: "Suspend",
    detail: "It will not run, nor will anything below it, until it is resumed.",
  },
  {
    label: "Resume",
    action: "ResumeTaskInstances",
    allowed: (t) => t.OperationType === "Suspend",
    verb: "Resume",
    detail: "It moves on as its time and upstream tasks allow.",
  },
];

export async function render(main, ctx) {
  const page = new InstancePage(main, ctx, Number(ctx.params[0]));
  await page.start();
  return () => page.stop();
}

class InstancePage {
  constructor(main, ctx, id) {
    this.main = main;
    this.ctx = ctx;
    this.id = id;
    this.alive = true;
    this.inst = null;
    this.project = null;
    this.tz = "UTC";
    this.workflow = null; // GetWorkflow's Workflow, or null when it cannot be read
    this.upstream = new Map(); // TaskId -> [upstream TaskId]
    this.tasks = []; // task instances, DAG order
    this.histories = new Map(); // task instance id -> {key, attempts}
    this.links = new Map(); // task instance id -> its upstreams [{DependencyType, TaskInstance}]
    this.downstream = new Map(); // the chosen task's downstreams, likewise
    this.linkErrors = new Map(); // task instance id -> why its upstreams cannot be read
    this.selected = Number(query().get("task")) || null;
    this.chosenRun = null; // the attempt whose log is shown
    this.runPinned = false; // chosen by the user, not "the latest"
    this.shownLog = "";
    this.logFor = ""; // "<id>:<run>" of the log in the <pre>
    this.following = false;
    this.refreshTimer = null;
    this.followTimer = null;
    this.loading = null;
    this.dagKey = "";
    this.nodes = new Map(); // task instance id -> its DAG <g>
    this.attemptsKey = "";
    this.backfill = null;
    this.onVisible = () => {
      if (document.visibilityState === "visible" && this.alive) {
        if (this.wantsRefresh()) this.refreshSoon(0);
        if (this.following) this.followSoon(0);
      }
    };
  }

  // A task instance's id given where a workflow instance's is read: say so, and link to its
  // workflow instance with the task selected (as the CLI names the command that fits).
  async otherKind(e) {
    if (e.code !== "Invalid.WorkflowInstance.NotExist") return null;
    let task;
    try {
      task = (await call("GetTaskInstance", { Id: this.id })).TaskInstance;
    } catch {
      return null;
    }
    return h(
      "p",
      { class: "other-kind" },
      `${this.id} is a task instance, not a workflow instance: the task ${task.TaskName} of `,
      link(`/console/instances/${task.WorkflowInstanceId}?task=${task.Id}`, `workflow instance ${task.WorkflowInstanceId}`),
      ".",
    );
  }

  async start() {
    clear(this.main, h("p", { class: "loading" }, "Loading instance…"));
    try {
      this.inst = (await call("GetWorkflowInstance", { Id: this.id })).WorkflowInstance;
      this.project = await this.findProject(this.inst.ProjectId);
      this.tz = this.project.TimeZone || "UTC";
      await this.loadNames();
    } catch (e) {
      clear(this.main, h("h1", {}, `Instance ${this.id}`), errorBox(e), await this.otherKind(e));
      return;
    }
    if (!this.alive) return;
    this.build();
    document.addEventListener("visibilitychange", this.onVisible);
    try {
      this.workflow = (await call("GetWorkflow", { Id: this.inst.WorkflowId })).Workflow;
      for (const t of this.workflow.Tasks || []) this.upstream.set(t.Id, t.UpstreamTaskIds || []);
    } catch (e) {
      this.workflow = null;
      this.dagNote.textContent = `The workflow's dependencies cannot be read (${e.message}); tasks are shown without edges.`;
    }
    await this.load();
  }

  stop() {
    this.alive = false;
    clearTimeout(this.refreshTimer);
    clearTimeout(this.followTimer);
    document.removeEventListener("visibilitychange", this.onVisible);
    if (this.backfill) this.backfill.close();
  }

  async findProject(id) {
    const ctx = this.ctx;
    if (ctx.project && ctx.project.Id === id) return ctx.project;
    const known = (ctx.projects || []).find((p) => p.Id === id);
    if (known) return known;
    return (await call("GetProject", { Id: id })).Project;
  }

  // The instance list's query for this instance's BizDate (and more filters).
  listQuery(extra = {}) {
    const q = new URLSearchParams({ project: this.inst.ProjectId, bizdate: formatDate(this.inst.BizDate, this.tz) });
    if (this.inst.EnvType === "Dev") q.set("env", "Dev");
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return q.toString();
  }

  url(instanceId) {
    return `/console/instances/${instanceId}?project=${this.inst.ProjectId}`;
  }

  // --- The page's frame, drawn once -----------------------------------------------------
  build() {
    const inst = this.inst;
    this.statusBox = h("span", { id: "instance-status" });
    this.title = h("h1", {}, inst.Name);
    this.facts = h("dl", { class: "facts" });
    this.siblingsBox = h("div", { class: "siblings-box" });
    this.results = h("div", { class: "results", role: "status", "aria-live": "polite" });
    this.opsBar = h("div", { class: "ops", role: "group", "aria-label": "Instance operations" });
    this.dagWrap = h("div", { class: "graph-wrap" });
    this.dagNote = h("p", { class: "note" });
    this.ganttWrap = h("div", { class: "graph-wrap" });
    this.ganttTable = h("div");
    this.taskPanel = h("section", { class: "panel task-panel", id: "task-panel", "aria-labelledby": "task-title" });
    this.taskTop = h("div", { class: "task-top" });
    this.depsBox = h("div", { class: "deps" });
    this.taskResults = h("div", { class: "results", role: "status", "aria-live": "polite" });
    this.refreshNote = h("span", { class: "note", "aria-live": "off" });
    this.edgeLegend = h(
      "span",
      { class: "edge-legend", hidden: true },
      edgeSample("other-workflow"),
      "upstream in another workflow (same cycle)",
      edgeSample("cross-cycle"),
      "upstream in a previous cycle",
    );
    const legend = h(
      "div",
      { class: "dag-legend", "aria-label": "Status colours and edges" },
      ["NotRun", "Running", "Success", "Failure"].map((s) => chip(s)),
      this.edgeLegend,
    );
    clear(
      this.main,
      h(
        "nav",
        { class: "crumbs", "aria-label": "Breadcrumb" },
        link(`/console/instances?${this.listQuery()}`, `Instances of ${formatDate(inst.BizDate, this.tz)}`),
        ` › ${inst.Name} (${inst.Id})`,
      ),
      h("div", { class: "title-row" }, this.title, this.statusBox, this.refreshNote),
      h("section", { class: "panel", "aria-label": "Instance" }, this.facts, this.siblingsBox),
      this.opsBar,
      this.results,
      h(
        "section",
        { "aria-labelledby": "dag-title" },
        h("div", { class: "section-head" }, h("h2", { id: "dag-title" }, "Tasks"), legend),
        h("p", { class: "note" }, "Select a task (click, or Tab to it and press Enter) to see its attempts, its log and its operations."),
        this.dagNote,
        this.dagWrap,
      ),
      h(
        "section",
        { "aria-labelledby": "gantt-title" },
        h("div", { class: "section-head" }, h("h2", { id: "gantt-title" }, "Timeline of attempts")),
        this.ganttWrap,
        this.ganttTable,
      ),
      this.taskPanel,
    );
    document.title = `${inst.Name} (${inst.Id}) · dwsched`;
  }

  // --- Loading ------------------------------------------------------------------------------
  // One load at a time; a load asked for meanwhile (after an operation) runs after it.
  load() {
    if (this.loading) {
      this.pending ||= this.loading.then(() => {
        this.pending = null;
        return this.load();
      });
      return this.pending;
    }
    this.loading = this.fetchAll().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  async fetchAll() {
    clearTimeout(this.refreshTimer);
    try {
      const [inst, tasks, siblings] = await Promise.all([
        call("GetWorkflowInstance", { Id: this.id }).then((r) => r.WorkflowInstance),
        this.fetchTasks(),
        this.fetchSiblings(),
      ]);
      if (!this.alive) return;
      this.inst = inst;
      await Promise.all([this.fetchHistories(tasks), this.fetchLinks(tasks)]);
      if (!this.alive) return;
      this.tasks = this.order(tasks);
      this.drawFacts(siblings);
      this.drawOps();
      this.drawDag();
      this.drawGantt();
      await this.drawTaskPanel();
      this.refreshNote.textContent = this.wantsRefresh() ? "Refreshing every 3 s" : "";
      this.failing = false;
    } catch (e) {
      if (!this.alive) return;
      if (!this.failing) toast(`Refresh failed: ${e.message}`, "error");
      this.failing = true;
      this.refreshNote.textContent = `Refresh failed: ${e.message}`;
    }
    if (this.alive && this.wantsRefresh()) this.refreshSoon(REFRESH_MS);
  }

  wantsRefresh() {
    return !!this.inst && (!finished(this.inst.Status) || this.tasks.some((t) => !finished(t.Status)));
  }

  refreshSoon(ms) {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      if (!this.alive) return;
      if (document.visibilityState !== "visible") return; // picked up again on visibilitychange
      this.load();
    }, ms);
  }

  async fetchTasks() {
    const inst = this.inst;
    const all = [];
    for (let n = 1; n <= MAX_PAGES; n++) {
      const found = await call("ListTaskInstances", {
        ProjectId: inst.ProjectId,
        WorkflowInstanceId: inst.Id,
        Bizdate: inst.BizDate,
        ProjectEnv: inst.EnvType,
        PageNumber: n,
        PageSize: PAGE_SIZE,
      });
      const items = found.PagingInfo.TaskInstances || [];
      all.push(...items);
      if (!items.length || all.length >= found.PagingInfo.TotalCount) break;
    }
    return all;
  }

  async fetchSiblings() {
    const inst = this.inst;
    if (!inst.UnifiedWorkflowInstanceId) return [];
    try {
      const found = await call("ListWorkflowInstances", {
        ProjectId: inst.ProjectId,
        BizDate: inst.BizDate,
        EnvType: inst.EnvType,
        UnifiedWorkflowInstanceId: inst.UnifiedWorkflowInstanceId,
        PageSize: 100,
      });
      return { items: found.PagingInfo.WorkflowInstances || [], total: found.PagingInfo.TotalCount };
    } catch {
      return null;
    }
  }

  // Each task instance's attempts. One attempt (RunNumber 1) is the task instance itself;
  // more come from ListTaskInstances with its Id (one item per attempt), fetched again only
  // when the task instance changed. The chosen task's history is always read.
  async fetchHistories(tasks) {
    const todo = [];
    for (const t of tasks) {
      const key = `${t.RunNumber}|${t.Status}|${t.StartedTime}|${t.FinishedTime}|${t.ModifyTime}`;
      const known = this.histories.get(t.Id);
      if (known && known.key === key) continue;
      if (t.RunNumber > 1 || t.Id === this.selected) todo.push([t, key]);
      else this.histories.set(t.Id, { key, attempts: t.StartedTime ? [attemptOf(t)] : [], exact: false });
    }
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const [t, key] = todo[next++];
        try {
          this.histories.set(t.Id, { key, attempts: await this.fetchHistory(t), exact: true });
        } catch {
          this.histories.set(t.Id, { key: "", attempts: t.StartedTime ? [attemptOf(t)] : [], exact: false });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(HISTORY_CALLS, todo.length) }, worker));
  }

  async fetchHistory(t) {
    const found = await call("ListTaskInstances", {
      ProjectId: this.inst.ProjectId,
      Bizdate: this.inst.BizDate,
      ProjectEnv: this.inst.EnvType,
      Id: t.Id,
      PageSize: PAGE_SIZE,
    });
    return (found.PagingInfo.TaskInstances || []).filter((a) => a.StartedTime).map(attemptOf);
  }

  // The upstreams of the tasks that need reading (links.linksToFetch), a few calls at once,
  // and the chosen task's downstreams. A task whose upstreams cannot be read keeps what was
  // read before; the panel says why.
  async fetchLinks(tasks) {
    const todo = linksToFetch(tasks, this.links, this.selected, this.inst.Id);
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const id = todo[next++];
        try {
          this.links.set(id, await this.fetchNeighbours(id, true));
          this.linkErrors.delete(id);
        } catch (e) {
          this.linkErrors.set(id, e.message);
        }
      }
    };
    const chosen = tasks.some((t) => t.Id === this.selected) ? this.fetchDownstream(this.selected) : null;
    await Promise.all([...Array.from({ length: Math.min(HISTORY_CALLS, todo.length) }, worker), chosen]);
  }

  async fetchDownstream(id) {
    try {
      this.downstream.set(id, await this.fetchNeighbours(id, false));
    } catch (e) {
      this.downstream.set(id, { error: e.message });
    }
  }

  // Every upstream (or downstream) of a task instance, with its DependencyType: in this
  // workflow instance, in other workflows' instances, in other cycles.
  async fetchNeighbours(id, upstream) {
    const action = upstream ? "ListUpstreamTaskInstances" : "ListDownstreamTaskInstances";
    const name = upstream ? "UpstreamTaskInstances" : "DownstreamTaskInstances";
    const all = [];
    for (let n = 1; n <= LINK_PAGES; n++) {
      const found = await call(action, { Id: id, PageNumber: n, PageSize: PAGE_SIZE });
      const items = found.PagingInfo[name] || [];
      all.push(...items);
      if (!items.length || all.length >= found.PagingInfo.TotalCount) break;
    }
    return all;
  }

  // Longest-path layering (a task sits one layer right of its furthest upstream), each
  // layer ordered by name; edges from the workflow's UpstreamTaskIds.
  order(tasks) {
    const byTask = new Map(tasks.map((t) => [t.TaskId, t]));
    const layer = new Map();
    const visiting = new Set();
    const depth = (t) => {
      if (layer.has(t.Id)) return layer.get(t.Id);
      if (visiting.has(t.Id)) return 0; // a cycle: never in a valid workflow
      visiting.add(t.Id);
      let d = 0;
      for (const u of this.upstream.get(t.TaskId) || []) {
        const up = byTask.get(u);
        if (up && up !== t) d = Math.max(d, depth(up) + 1);
      }
      visiting.delete(t.Id);
      layer.set(t.Id, d);
      return d;
    };
    for (const t of tasks) depth(t);
    this.layerOf = layer;
    return [...tasks].sort((a, b) => layer.get(a.Id) - layer.get(b.Id) || compareNames(a.TaskName, b.TaskName) || a.Id - b.Id);
  }

  // --- Facts ------------------------------------------------------------------------------
  // An account id with its user's name, when the user is a member (GetAccountNames).
  account(id) {
    const name = this.names && this.names[id];
    return name ? h("span", { title: `account ${id}` }, `${name} (${id})`) : id;
  }

  async loadNames() {
    const ids = [...new Set([this.inst.Owner, this.inst.CreateUser].filter(Boolean))];
    try {
      this.names = (await call("GetAccountNames", { ProjectId: this.inst.ProjectId, Ids: ids })).Names;
    } catch {
      this.names = {}; // a reader without ListProjectMembers sees the ids
    }
  }

  drawFacts(siblings) {
    const inst = this.inst;
    const tz = this.tz;
    // An instance made only of dry runs ran nothing: its Success is not a real run's.
    const dry = this.tasks.length > 0 && this.tasks.every((t) => t.TriggerRecurrence && t.TriggerRecurrence !== "Normal");
    const kinds = [...new Set(this.tasks.map((t) => t.TriggerRecurrence))].join(", ");
    clear(
      this.statusBox,
      chip(inst.Status),
      dry ? dryMark(`Every task of this instance is a dry run (${kinds}): nothing ran.`) : null,
    );
    this.title.textContent = inst.Name;
    const fact = (name, value, cls) => h("div", {}, h("dt", {}, name), h("dd", { class: cls }, value === "" || value == null ? "—" : value));
    const wf = this.workflow;
    clear(
      this.facts,
      fact("Instance", String(inst.Id)),
      fact("Type", inst.Type),
      fact("BizDate", formatDate(inst.BizDate, tz)),
      fact("Workspace", `${this.project.Name || inst.ProjectId} (${inst.ProjectId}) · ${tz}`),
      fact("Trigger time", formatTime(inst.TriggerTime, tz)),
      fact("Started", formatTime(inst.StartedTime, tz)),
      fact("Finished", formatTime(inst.FinishedTime, tz)),
      fact("Duration", formatDuration(inst.StartedTime, inst.FinishedTime)),
      fact("Owner", this.account(inst.Owner)),
      fact(
        "Workflow",
        link(`/console/workflows?project=${inst.ProjectId}&name=${encodeURIComponent(wf ? wf.Name : inst.Name)}`, `${wf ? wf.Name : inst.Name} (${inst.WorkflowId})`),
      ),
      fact("Environment", inst.EnvType),
      fact("Created by", this.account(inst.CreateUser)),
      fact("Parameters", inst.WorkflowParameters, "text"),
      fact("Tags", (inst.Tags || []).map((t) => (t.Value ? `${t.Key}=${t.Value}` : t.Key)).join(", "), "text"),
    );
    const unified = inst.UnifiedWorkflowInstanceId;
    if (!unified) {
      clear(this.siblingsBox);
      return;
    }
    const head = h("p", { class: "muted" }, `Unified instance ${unified}`);
    if (!siblings) {
      clear(this.siblingsBox, head);
      return;
    }
    const items = siblings.items;
    if (items.length <= 1) {
      head.append(": no other instance shares it.");
      clear(this.siblingsBox, head);
      return;
    }
    head.append(`: ${siblings.total} instances of one trigger and BizDate.`);
    clear(
      this.siblingsBox,
      head,
      h(
        "ul",
        { class: "siblings", "aria-label": "Instances of the same unified instance" },
        items.map((s) =>
          h(
            "li",
            { class: s.Id === inst.Id ? "current" : "" },
            s.Id === inst.Id ? h("span", { "aria-current": "page" }, `${s.Name} (${s.Id})`) : link(this.url(s.Id), `${s.Name} (${s.Id})`),
            chip(s.Status),
          ),
        ),
        siblings.total > items.length ? h("li", {}, link(`/console/instances?${this.listQuery({ unified })}`, `… all ${siblings.total} in the instance list`)) : null,
      ),
    );
  }

  // --- Instance operations -----------------------------------------------------------------
  drawOps() {
    const inst = this.inst;
    const failed = this.tasks.filter((t) => t.Status === "Failure");
    const manual = inst.Type === "ManualWorkflow";
    const keep = document.activeElement && this.opsBar.contains(document.activeElement) ? document.activeElement.textContent : null;
    const button = (label, enabled, why, onclick, cls = "") =>
      h("button", { type: "button", class: cls, disabled: !enabled, title: enabled ? null : why, onclick }, label);
    const buttons = [
      button(
        "Rerun failed and downstream",
        failed.length > 0 && (!manual || finished(inst.Status)),
        failed.length ? "The instance must be finished first." : "No task instance failed.",
        () => this.rerunFailed(),
      ),
      button("Stop instance", !finished(inst.Status), "The instance has finished.", () => this.stopInstance(), "danger"),
    ];
    if (inst.Status === "NotRun" && !inst.StartedTime) {
      buttons.push(button("Start", true, "", () => this.startInstance()));
    }
    const wf = this.workflow;
    if (wf && wf.Trigger && wf.Trigger.Type === "Scheduler") {
      buttons.push(
        button("Backfill…", true, "", () => {
          this.backfill = openBackfill({ ...this.ctx, project: this.project }, wf);
        }),
      );
    }
    clear(this.opsBar, h("span", { class: "label" }, "Instance:"), buttons);
    if (keep) {
      const again = [...this.opsBar.querySelectorAll("button")].find((b) => b.textContent === keep && !b.disabled);
      if (again) again.focus();
    }
  }

  async rerunFailed() {
    const inst = this.inst;
    const failed = this.tasks.filter((t) => t.Status === "Failure");
    if (!failed.length) return;
    const names = failed.map((t) => `${t.Id} (${t.TaskName})`).join(", ");
    if (inst.Type === "ManualWorkflow") {
      const ok = await confirmDialog(
        "Rerun failed and downstream",
        `Rerun the failed task instances of instance ${inst.Id} (${inst.Name}) and everything below them: ${names}?`,
      );
      if (!ok) return;
      await this.perform("Rerun failed and downstream", async () => {
        const started = await call("RerunWorkflowInstances", {
          ProjectId: inst.ProjectId,
          Type: "ManualWorkflow",
          WorkflowId: inst.WorkflowId,
          Ids: [inst.Id],
          EnvType: inst.EnvType,
          Filter: { TaskInstanceStatuses: ["Failure"], RerunDownstreamEnabled: true },
        });
        const result = (await call("GetRerunWorkflowInstancesResult", { OperationId: started.OperationId })).Result;
        return [{ id: inst.Id, label: `Instance ${inst.Id}`, success: result.Status === "Success", message: result.FailureMessage || (result.Status === "Success" ? "" : result.Status) }];
      });
      return;
    }
    const ok = await confirmDialog(
      "Rerun failed and downstream",
      `Rerun ${failed.length} failed task instance${failed.length > 1 ? "s" : ""} of instance ${inst.Id}: ${names}? Their downstream tasks that did not run follow when they succeed.`,
    );
    if (!ok) return;
    await this.perform("Rerun failed and downstream", async () => {
      const r = await call("RerunTaskInstances", { Ids: failed.map((t) => t.Id) });
      return successInfo(r, this.labels());
    });
  }

  async stopInstance() {
    const inst = this.inst;
    const ok = await confirmDialog(
      "Stop instance",
      `Stop instance ${inst.Id} (${inst.Name})? Every unfinished task instance stops and the instance ends Failure.`,
    );
    if (!ok) return;
    await this.perform("Stop instance", async () => {
      const r = await call("StopWorkflowInstances", { Ids: [inst.Id] });
      return successInfo(r, new Map([[inst.Id, `Instance ${inst.Id} (${inst.Name})`]]));
    });
  }

  async startInstance() {
    const inst = this.inst;
    const ok = await confirmDialog("Start instance", `Start instance ${inst.Id} (${inst.Name})? It was created not to start by itself.`);
    if (!ok) return;
    await this.perform("Start", async () => {
      const r = await call("StartWorkflowInstances", { Ids: [inst.Id] });
      return successInfo(r, new Map([[inst.Id, `Instance ${inst.Id} (${inst.Name})`]]));
    });
  }

  labels() {
    return new Map(this.tasks.map((t) => [t.Id, `Task instance ${t.Id} (${t.TaskName})`]));
  }

  // Run an operation, show each id's outcome (or the server's refusal), then refresh.
  async perform(what, run, where = this.results) {
    let outcome;
    clear(this.results);
    clear(this.taskResults);
    try {
      outcome = await run();
    } catch (e) {
      if (!this.alive) return;
      const box = errorBox(e);
      box.prepend(h("strong", {}, `${what} was refused: `));
      clear(where, box);
      toast(`${what}: ${e.message}`, "error");
      return;
    }
    if (!this.alive) return;
    const allOk = outcome.every((o) => o.success);
    clear(
      where,
      h(
        "div",
        { class: allOk ? "panel" : "error", role: allOk ? null : "alert" },
        h("strong", {}, `${what}: `),
        allOk ? "done." : "not everything was done.",
        h(
          "ul",
          {},
          outcome.map((o) =>
            h("li", { class: o.success ? "ok" : "refused" }, `${o.label}: ${o.success ? "✓ accepted" : "✕ refused"}`, o.message && !(o.success && o.message === "OK") ? ` — ${o.message}` : ""),
          ),
        ),
      ),
    );
    toast(allOk ? `${what}: done` : `${what}: ${outcome.filter((o) => !o.success).map((o) => o.message).join("; ")}`, allOk ? "info" : "error");
    await this.load();
  }

  // --- DAG ----------------------------------------------------------------------------------
  // The instance's tasks in layers, left to right; when tasks wait outside the instance, a
  // first column holds those upstreams (one box each, linking to its instance's page), with
  // solid edges from other workflows' instances and dashed ones from previous cycles.
  drawDag() {
    const tasks = this.tasks;
    const byTask = new Map(tasks.map((t) => [t.TaskId, t]));
    const W = 200;
    const H = 46;
    const WX = 224; // an external upstream's box: wider, four lines
    const HX = 76;
    const GX = 64;
    const GY = 16;
    const PAD = 14;
    const layers = [];
    for (const t of tasks) {
      const l = this.layerOf.get(t.Id);
      (layers[l] ||= []).push(t);
    }
    const rowOf = new Map();
    layers.forEach((column) => column.forEach((t, i) => rowOf.set(t.Id, i)));
    const ext = externalGraph(tasks, this.links, this.inst.Id, (id) => rowOf.get(id) ?? 0);
    const shift = ext.boxes.length ? 1 : 0;
    this.edgeLegend.hidden = !ext.boxes.length;
    const key = [
      tasks.map((t) => `${t.Id}<${(this.upstream.get(t.TaskId) || []).join(",")}`).join(";"),
      ext.edges.map((e) => `${e.from}>${e.to}:${e.kind}`).join(";"),
      ext.boxes.map((b) => `${b.up.Id}:${b.up.Status}`).join(";"),
    ].join("|");
    this.noteLinks();
    if (key === this.dagKey && this.nodes.size) {
      for (const t of tasks) this.paintNode(this.nodes.get(t.Id), t);
      return;
    }
    this.dagKey = key;
    this.nodes.clear();
    const active = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset : {};
    const pos = new Map();
    const x0 = PAD + (shift ? WX + GX : 0); // the tasks' columns, right of the external one
    layers.forEach((column, l) => column.forEach((t, i) => pos.set(t.Id, { x: x0 + l * (W + GX), y: PAD + i * (H + GY) })));
    const upPos = new Map();
    ext.boxes.forEach((b, i) => upPos.set(b.up.Id, { x: PAD, y: PAD + i * (HX + GY) }));
    const rows = Math.max(1, ...layers.map((c) => (c ? c.length : 0)));
    const width = x0 + PAD + Math.max(1, layers.length) * (W + GX) - GX;
    const height = PAD * 2 + Math.max(rows * (H + GY), ext.boxes.length * (HX + GY)) - GY;
    const edges = [];
    const edge = (x1, y1, x2, y2, cls) => {
      const dx = Math.max(20, (x2 - x1) / 2);
      return h("path", { class: cls, d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, "marker-end": "url(#dag-arrow)" });
    };
    for (const t of tasks) {
      const to = pos.get(t.Id);
      for (const u of this.upstream.get(t.TaskId) || []) {
        const up = byTask.get(u);
        if (!up || up === t) continue;
        const from = pos.get(up.Id);
        edges.push(edge(from.x + W, from.y + H / 2, to.x - 2, to.y + H / 2, "edge"));
      }
    }
    for (const e of ext.edges) {
      const from = upPos.get(e.from);
      const to = pos.get(e.to);
      const g = edge(from.x + WX, from.y + HX / 2, to.x - 2, to.y + H / 2, `edge ${e.kind}`);
      g.dataset.from = String(e.from);
      g.dataset.to = String(e.to);
      g.dataset.kind = e.kind;
      edges.push(g);
    }
    const nodes = tasks.map((t) => {
      const p = pos.get(t.Id);
      const g = h(
        "g",
        {
          class: "node",
          tabindex: "0",
          role: "button",
          transform: `translate(${p.x},${p.y})`,
          dataset: { taskInstance: String(t.Id) },
          onclick: () => this.select(t.Id),
          onkeydown: (e) => {
            if (e.key === "Enter" || e.key === " ") {
              e.preventDefault();
              this.select(t.Id);
            }
          },
        },
        h("title"),
        h("rect", { width: W, height: H, rx: 6, ry: 6 }),
        h("text", { x: 10, y: 18, class: "name" }, clip(t.TaskName, 27)),
        h("text", { x: 10, y: 35, class: "sub" }),
      );
      this.nodes.set(t.Id, g);
      this.paintNode(g, t);
      return g;
    });
    const outsiders = ext.boxes.map((b) => this.externalNode(b, upPos.get(b.up.Id), WX, HX));
    const count = `${tasks.length} task instance${tasks.length === 1 ? "" : "s"}`;
    const waited = ext.boxes.length ? `, and ${ext.boxes.length} upstream task instance${ext.boxes.length === 1 ? "" : "s"} outside this instance` : "";
    const svg = h(
      "svg",
      {
        id: "dag",
        role: "group",
        "aria-label": `Task DAG: ${count}${waited}`,
        width,
        height,
        viewBox: `0 0 ${width} ${height}`,
      },
      h(
        "defs",
        {},
        h(
          "marker",
          { id: "dag-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
          h("path", { class: "arrow", d: "M0,0 L10,5 L0,10 z" }),
        ),
      ),
      h("g", { class: "edges", "aria-hidden": "true" }, edges),
      outsiders.length ? h("g", { class: "outside", role: "group", "aria-label": "Upstreams outside this instance" }, outsiders) : null,
      h("g", { class: "nodes" }, nodes),
    );
    const left = this.dagWrap.scrollLeft;
    const top = this.dagWrap.scrollTop;
    if (!tasks.length) clear(this.dagWrap, svg, h("p", { class: "note" }, "This instance has no task instances."));
    else clear(this.dagWrap, svg);
    this.dagWrap.scrollLeft = left;
    this.dagWrap.scrollTop = top;
    if (active.taskInstance && this.nodes.has(Number(active.taskInstance))) this.nodes.get(Number(active.taskInstance)).focus({ preventScroll: true });
    if (active.upstreamInstance) svg.querySelector(`[data-upstream-instance="${CSS.escape(active.upstreamInstance)}"]`)?.focus({ preventScroll: true });
  }

  // An upstream outside the instance: its task, workflow instance, BizDate and trigger time,
  // status and kind; it opens that workflow instance's page.
  externalNode(box, p, W, HX) {
    const up = box.up;
    const url = instanceUrl(up);
    const lines = boxLines(box, this.tz);
    const open = () => this.ctx.navigate(url);
    const feeds = box.feeds.map((id) => (this.tasks.find((t) => t.Id === id) || { TaskName: id }).TaskName).join(", ");
    const kinds = box.kinds.map(kindLabel).join(", ");
    return h(
      "g",
      {
        class: ["node", "external", `node-${statusGroup(up.Status)}`, ...box.kinds].join(" "),
        tabindex: "0",
        role: "link",
        transform: `translate(${p.x},${p.y})`,
        "aria-label": `Upstream ${up.TaskName}, ${kinds}: task instance ${up.Id} of ${up.WorkflowName} instance ${up.WorkflowInstanceId}, ${lines[2]}, ${up.Status}. Waited for by ${feeds}. Opens that instance.`,
        dataset: { upstreamInstance: String(up.Id), workflowInstance: String(up.WorkflowInstanceId), upstreamStatus: up.Status, kinds: box.kinds.join(" ") },
        onclick: open,
        onkeydown: (e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            open();
          }
        },
      },
      h("title", {}, [...lines, `Task instance ${up.Id}`, `Waited for by ${feeds}`, "Opens that workflow instance"].join("\n")),
      h("rect", { width: W, height: HX, rx: 6, ry: 6 }),
      h("text", { x: 10, y: 17, class: "name" }, clip(lines[0], 28)),
      lines.slice(1).map((line, i) => h("text", { x: 10, y: 34 + i * 16, class: "sub" }, clip(line, 34))),
    );
  }

  // Say when upstreams outside the instance are not all shown.
  noteLinks() {
    if (!this.workflow) return; // the note says why the DAG has no edges
    const notes = [];
    if (this.tasks.length > MAX_LINKED_TASKS) {
      notes.push(`This instance has ${this.tasks.length} tasks: upstreams outside it are shown for the selected task only.`);
    }
    if (this.linkErrors.size) {
      const [first] = this.linkErrors.values();
      notes.push(`The upstreams of ${this.linkErrors.size} task${this.linkErrors.size === 1 ? "" : "s"} cannot be read (${first}).`);
    }
    this.dagNote.textContent = notes.join(" ");
  }

  paintNode(g, t) {
    const group = statusGroup(t.Status);
    const dry = t.TriggerRecurrence && t.TriggerRecurrence !== "Normal";
    const suspended = t.OperationType === "Suspend";
    g.setAttribute(
      "class",
      ["node", `node-${group}`, dry ? "dry" : "", suspended ? "suspended" : "", t.Id === this.selected ? "selected" : ""].filter(Boolean).join(" "),
    );
    g.dataset.status = t.Status;
    g.setAttribute("aria-label", `${t.TaskName} ${t.Status}${suspended ? " suspended" : ""}`);
    g.setAttribute("aria-pressed", t.Id === this.selected ? "true" : "false");
    const mark = { waiting: "◷", running: "▶", success: "✓", failure: "✕" }[group];
    const extras = [suspended ? "⏸ suspended" : "", dry ? `dry run (${t.TriggerRecurrence})` : "", t.RunNumber > 1 ? `run ${t.RunNumber}` : ""].filter(Boolean);
    g.querySelector("text.sub").textContent = clip(`${mark} ${t.Status}${extras.length ? ` · ${extras.join(" · ")}` : ""}`, 32);
    g.querySelector("title").textContent = [
      `${t.TaskName} — ${t.Status}`,
      `Task instance ${t.Id}, task ${t.TaskId} (${t.TaskType})`,
      t.StartedTime ? `Started ${formatTime(t.StartedTime, this.tz)}` : "Not started",
      t.FinishedTime ? `Finished ${formatTime(t.FinishedTime, this.tz)} (${formatDuration(t.StartedTime, t.FinishedTime)})` : "",
      ...extras,
    ]
      .filter(Boolean)
      .join("\n");
  }

  // --- Timeline -----------------------------------------------------------------------------
  drawGantt() {
    const tz = this.tz;
    const now = Date.now();
    const rows = this.tasks.map((t) => ({ t, attempts: (this.histories.get(t.Id) || { attempts: [] }).attempts }));
    const started = rows.filter((r) => r.attempts.length);
    started.sort((a, b) => a.attempts[0].StartedTime - b.attempts[0].StartedTime || compareNames(a.t.TaskName, b.t.TaskName));
    const LABEL = 200;
    const width = Math.max(720, (this.ganttWrap.clientWidth || 980) - 2);
    const PLOT = width - LABEL - 40;
    const ROW = 24;
    const TOP = 26;
    if (!started.length) {
      clear(
        this.ganttWrap,
        h("svg", { id: "gantt", role: "img", "aria-label": "Timeline: no task has started yet", width, height: 40, viewBox: `0 0 ${width} 40` }, h("text", { class: "empty", x: 10, y: 24 }, "No task has started yet.")),
      );
      clear(this.ganttTable);
      return;
    }
    let t0 = Infinity;
    let t1 = -Infinity;
    for (const r of started) {
      for (const a of r.attempts) {
        t0 = Math.min(t0, a.StartedTime);
        t1 = Math.max(t1, a.FinishedTime || now);
      }
    }
    if (t1 - t0 < 1000) t1 = t0 + 1000;
    const x = (ms) => LABEL + ((ms - t0) / (t1 - t0)) * PLOT;
    const height = TOP + started.length * ROW + 8;
    const step = tickStep(t1 - t0);
    const ticks = [];
    const multiDay = formatDate(t0, tz) !== formatDate(t1, tz);
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const at = x(t);
      const text = formatTime(t, tz);
      ticks.push(
        h("line", { class: "axis", x1: at, x2: at, y1: TOP - 6, y2: height - 4 }),
        h("text", { class: "tick", x: at, y: TOP - 10, "text-anchor": "middle" }, multiDay ? text.slice(5, 16) : text.slice(11)),
      );
    }
    const body = [];
    const table = [];
    started.forEach((r, i) => {
      const y = TOP + i * ROW;
      const t = r.t;
      if (t.Id === this.selected) body.push(h("rect", { class: "row-selected", x: 0, y: y - 2, width, height: ROW }));
      body.push(h("text", { class: "label", x: 6, y: y + 14, onclick: () => this.select(t.Id) }, h("title", {}, `${t.TaskName} (${t.Id})`), clip(t.TaskName, 28)));
      const dry = t.TriggerRecurrence && t.TriggerRecurrence !== "Normal";
      r.attempts.forEach((a, k) => {
        const end = a.FinishedTime || now;
        const from = x(a.StartedTime);
        // A mark at least MIN_MARK wide (an attempt of a second in an hour's timeline, a
        // dry run of no time at all, would be a sliver), labelled when there is room before
        // the next attempt.
        const wide = Math.max(MIN_MARK, x(end) - from);
        const nextFrom = k + 1 < r.attempts.length ? x(r.attempts[k + 1].StartedTime) : LABEL + PLOT + 40;
        const tip = `${t.TaskName} · ${dry ? `dry run (${t.TriggerRecurrence}): nothing ran` : `run ${a.RunNumber}`} · ${a.Status}\n${formatTime(a.StartedTime, tz)} → ${a.FinishedTime ? formatTime(a.FinishedTime, tz) : "running"} (${formatDuration(a.StartedTime, a.FinishedTime)})`;
        body.push(
          h(
            "rect",
            {
              class: `bar bar-${dry ? "dry" : statusGroup(a.Status)}`,
              x: from,
              y: y + 2,
              width: wide,
              height: ROW - 8,
              rx: 2,
              dataset: { taskInstance: String(t.Id), run: String(a.RunNumber), status: a.Status },
              onclick: () => this.select(t.Id, a.RunNumber),
            },
            h("title", {}, tip),
          ),
        );
        const text = dry ? "dry run" : `${statusMark(a.Status)} run ${a.RunNumber}`;
        if (nextFrom - (from + wide) >= text.length * 6 + 8) {
          body.push(h("text", { class: "bar-label", x: from + wide + 4, y: y + 13, "aria-hidden": "true" }, text));
        }
        table.push(
          h(
            "tr",
            {},
            h("td", {}, t.TaskName),
            h("td", { class: "num" }, String(a.RunNumber)),
            h("td", {}, chip(a.Status)),
            h("td", {}, formatTime(a.StartedTime, tz)),
            h("td", {}, formatTime(a.FinishedTime, tz)),
            h("td", { class: "num" }, formatDuration(a.StartedTime, a.FinishedTime)),
          ),
        );
      });
    });
    const nowLine = now <= t1 + 1 && rows.some((r) => r.attempts.some((a) => !a.FinishedTime)) ? h("line", { class: "now", x1: x(now), x2: x(now), y1: TOP - 6, y2: height - 4 }) : null;
    const count = table.length;
    const svg = h(
      "svg",
      {
        id: "gantt",
        role: "img",
        "aria-label": `Timeline of ${count} attempt${count === 1 ? "" : "s"} of ${started.length} task${started.length === 1 ? "" : "s"}, from ${formatTime(t0, tz)} to ${formatTime(t1, tz)} (${tz}); the table below lists them.`,
        width,
        height,
        viewBox: `0 0 ${width} ${height}`,
      },
      ticks,
      body,
      nowLine,
    );
    const left = this.ganttWrap.scrollLeft;
    clear(this.ganttWrap, svg);
    this.ganttWrap.scrollLeft = left;
    const wasOpen = this.ganttTable.querySelector("details")?.open;
    clear(
      this.ganttTable,
      h(
        "details",
        { class: "alt", open: wasOpen || null },
        h("summary", {}, `Timeline as a table (${count} attempt${count === 1 ? "" : "s"}, times in ${tz})`),
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Task", "Run", "Status", "Started", "Finished", "Duration"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, table),
        ),
      ),
    );
  }

  // --- The chosen task ----------------------------------------------------------------------
  async select(id, run = null) {
    if (this.selected !== id) {
      this.stopFollow();
      this.selected = id;
      this.chosenRun = run;
      this.runPinned = run !== null;
      clear(this.taskResults);
      this.attemptsKey = "";
      setQuery({ project: this.inst.ProjectId, task: id });
      for (const [tid, g] of this.nodes) {
        g.classList.toggle("selected", tid === id);
        g.setAttribute("aria-pressed", tid === id ? "true" : "false");
      }
    } else if (run !== null && run !== this.chosenRun) {
      this.stopFollow();
      this.chosenRun = run;
      this.runPinned = true;
      this.attemptsKey = "";
    }
    const t = this.tasks.find((x) => x.Id === id);
    if (t) {
      const reads = [];
      if (!this.links.has(t.Id)) {
        reads.push(
          this.fetchNeighbours(t.Id, true).then(
            (found) => {
              this.links.set(t.Id, found);
              this.linkErrors.delete(t.Id);
            },
            (e) => this.linkErrors.set(t.Id, e.message),
          ),
        );
      }
      if (!this.downstream.has(t.Id)) reads.push(this.fetchDownstream(t.Id));
      await Promise.all(reads);
      const known = this.histories.get(t.Id);
      if (!known || !known.exact) {
        try {
          this.histories.set(t.Id, { key: known ? known.key : "", attempts: await this.fetchHistory(t), exact: true });
        } catch {}
      }
    }
    if (!this.alive) return;
    this.drawDag();
    this.drawGantt();
    await this.drawTaskPanel();
    this.taskPanel.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  async drawTaskPanel() {
    const t = this.tasks.find((x) => x.Id === this.selected);
    if (!t) {
      this.stopFollow();
      this.logTask = null;
      this.logEl = null;
      this.logFor = "";
      this.attemptsKey = "";
      clear(
        this.taskPanel,
        h("h2", { id: "task-title" }, "No task selected"),
        h("p", { class: "note" }, "Select a task in the DAG above."),
      );
      return;
    }
    const attempts = (this.histories.get(t.Id) || { attempts: [] }).attempts;
    const latest = attempts.length ? attempts[attempts.length - 1].RunNumber : t.RunNumber;
    // The latest run unless the user chose one (Show log, a timeline bar).
    // While following, followTick moves to each new run itself.
    if (!this.following && (!this.runPinned || this.chosenRun === null || this.chosenRun > Math.max(latest, t.RunNumber))) {
      this.chosenRun = Math.max(latest, 1);
    }
    const tz = this.tz;
    if (this.logTask !== t.Id) this.buildLogBox(t);
    const key = `${t.Id}|${this.chosenRun}|${JSON.stringify(attempts)}|${t.Status}|${t.OperationType}|${t.RunNumber}`;
    if (key !== this.attemptsKey || this.taskTop.parentNode !== this.taskPanel) {
      this.attemptsKey = key;
      const keepFocus = document.activeElement && this.taskTop.contains(document.activeElement) ? focusKey(document.activeElement) : null;
      const ops = TASK_OPS.map((op) =>
        h(
          "button",
          {
            type: "button",
            class: op.label === "Stop" ? "danger" : "",
            disabled: !op.allowed(t),
            title: op.allowed(t) ? null : `Not possible while the task is ${t.Status}${t.OperationType === "Suspend" ? " (suspended)" : ""}`,
            onclick: () => this.taskOp(op, t.Id),
          },
          op.label,
        ),
      );
      const attemptRows = attempts.length
        ? attempts.map((a) =>
            h(
              "tr",
              { class: a.RunNumber === this.chosenRun ? "chosen" : "" },
              h("td", { class: "num" }, String(a.RunNumber)),
              h("td", {}, chip(a.Status)),
              h("td", {}, formatTime(a.StartedTime, tz)),
              h("td", {}, formatTime(a.FinishedTime, tz)),
              h("td", { class: "num" }, formatDuration(a.StartedTime, a.FinishedTime)),
              h(
                "td",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    "aria-pressed": a.RunNumber === this.chosenRun ? "true" : "false",
                    "aria-label": `Show the log of run ${a.RunNumber}`,
                    dataset: { run: String(a.RunNumber) },
                    onclick: () => this.chooseRun(a.RunNumber),
                  },
                  "Show log",
                ),
              ),
            ),
          )
        : [h("tr", {}, h("td", { colspan: "6", class: "muted" }, "It has not run yet."))];
      clear(
        this.taskTop,
        h("h2", { id: "task-title" }, `Task ${t.TaskName}`, chip(t.Status), t.OperationType === "Suspend" ? h("span", { class: "muted" }, "⏸ suspended") : null),
        h(
          "p",
          { class: "meta muted" },
          `Task instance ${t.Id} · task ${t.TaskId} · ${t.TaskType} · run ${t.RunNumber} · trigger time ${formatTime(t.TriggerTime, tz)}`,
          t.TriggerRecurrence && t.TriggerRecurrence !== "Normal" ? ` · dry run (${t.TriggerRecurrence})` : "",
          t.OperationType ? ` · last operation ${t.OperationType}` : "",
        ),
        h("div", { class: "ops", role: "group", "aria-label": `Operations on ${t.TaskName}` }, ops),
        h(
          "table",
          { class: "attempts", "aria-label": `Attempts of ${t.TaskName} (times in ${tz})` },
          h("thead", {}, h("tr", {}, ["Run", "Status", "Started", "Finished", "Duration", "Log"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, attemptRows),
        ),
      );
      if (this.taskTop.parentNode !== this.taskPanel) clear(this.taskPanel, this.taskTop, this.taskResults, this.depsBox, this.logBox);
      if (keepFocus) restoreFocus(this.taskTop, keepFocus);
    }
    this.drawDeps(t);
    this.paintLogHead(t);
    if (this.logFor !== `${t.Id}:${this.chosenRun}`) await this.loadLog(true);
    else if (!this.following && !finished(t.Status) && this.chosenRun === t.RunNumber) await this.loadLog(false);
  }

  // The chosen task's upstreams (each with "Remove dependency" while the task waits) and
  // downstreams, in this instance and outside it; redrawn only when they change.
  drawDeps(t) {
    const up = this.links.get(t.Id);
    const down = this.downstream.get(t.Id);
    const key = JSON.stringify([t.Id, t.Status, up, down, this.linkErrors.get(t.Id)]);
    if (key === this.depsKey && this.depsBox.parentNode === this.taskPanel) return;
    this.depsKey = key;
    const keep = document.activeElement && this.depsBox.contains(document.activeElement) ? document.activeElement.dataset.remove : null;
    const tz = this.tz;
    const removable = REMOVABLE.has(t.Status);
    const row = (item, upstream) => {
      const u = item.TaskInstance;
      const here = u.WorkflowInstanceId === this.inst.Id;
      return h(
        "tr",
        { dataset: { neighbour: String(u.Id), dependency: item.DependencyType, here: here ? "true" : "false" } },
        h("td", {}, u.TaskName, h("div", { class: "muted" }, `task instance ${u.Id}`)),
        h("td", {}, here ? "this instance" : link(instanceUrl(u), `${u.WorkflowName} (${u.WorkflowInstanceId})`)),
        h("td", {}, formatDate(u.Bizdate, tz)),
        h("td", {}, formatTime(u.TriggerTime, tz)),
        h("td", {}, dependencyText(item, this.inst.Id)),
        h("td", {}, chip(u.Status)),
        upstream
          ? h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  disabled: !removable,
                  title: removable ? null : `Only a waiting task (NotRun or WaitTime) stops waiting; this one is ${t.Status}`,
                  "aria-label": `Remove the dependency of ${t.TaskName} on ${u.TaskName} (task instance ${u.Id})`,
                  dataset: { remove: String(u.Id) },
                  onclick: () => this.removeDependency(t, item),
                },
                "Remove dependency",
              ),
            )
          : null,
      );
    };
    const table = (items, upstream, caption) =>
      h(
        "table",
        { class: "neighbours", "aria-label": `${caption} (times in ${tz})` },
        h("thead", {}, h("tr", {}, ["Task", "Workflow instance", "BizDate", "Trigger time", "Dependency", "Status", upstream ? "Operation" : null].filter((c) => c !== null).map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, items.map((item) => row(item, upstream))),
      );
    const section = (title, items, error, upstream) => {
      const parts = [h("h3", {}, title)];
      if (items === undefined && error) parts.push(h("p", { class: "note" }, `They cannot be read: ${error}`));
      else if (items === undefined) parts.push(h("p", { class: "note" }, "Reading…"));
      else if (!items.length) parts.push(h("p", { class: "note" }, upstream ? "It waits for no other task instance." : "No task instance waits for it."));
      else {
        const outsideCount = outside(items, this.inst.Id).length;
        if (outsideCount) parts.push(h("p", { class: "note" }, `${outsideCount} of them outside this instance (other workflows, other cycles).`));
        parts.push(table(items, upstream, `${title} of ${t.TaskName}`));
      }
      return parts;
    };
    const downItems = down && !down.error ? down : undefined;
    clear(
      this.depsBox,
      section("Upstream task instances", up, this.linkErrors.get(t.Id), true),
      section("Downstream task instances", downItems, down && down.error, false),
    );
    if (keep) this.depsBox.querySelector(`button[data-remove="${CSS.escape(keep)}"]`)?.focus({ preventScroll: true });
  }

  // RemoveTaskInstanceDependencies for one upstream, after a confirmation with a comment.
  async removeDependency(t, item) {
    const u = item.TaskInstance;
    const here = u.WorkflowInstanceId === this.inst.Id;
    const comment = h("textarea", { id: "dependency-comment", rows: "2", maxlength: "1024" });
    const answer = await dialog(
      "Remove dependency",
      [
        h(
          "p",
          {},
          `Task instance ${t.Id} (${t.TaskName}) will no longer wait for task instance ${u.Id} (${u.TaskName}) of `,
          here ? "this instance" : `${u.WorkflowName} instance ${u.WorkflowInstanceId}`,
          `, BizDate ${formatDate(u.Bizdate, this.tz)}, now ${u.Status} (${dependencyText(item, this.inst.Id)}). `,
          "It then runs as soon as its time and its other upstreams allow. This cannot be undone.",
        ),
        h("label", { for: "dependency-comment" }, "Comment (kept with the operation)"),
        comment,
      ],
      [
        { label: "Cancel", value: false },
        { label: "Remove dependency", value: true, primary: true },
      ],
    );
    if (!answer) return;
    await this.perform(`Remove dependency of ${t.TaskName}`, async () => {
      await call("RemoveTaskInstanceDependencies", { Id: t.Id, UpstreamTaskInstanceIds: [u.Id], Comment: comment.value });
      this.links.delete(t.Id); // read again
      return [{ id: t.Id, label: `Task instance ${t.Id} (${t.TaskName})`, success: true, message: `no longer waits for ${u.Id} (${u.TaskName})` }];
    }, this.taskResults);
  }

  // The log part of the panel: kept while the same task stays chosen, so its scroll
  // position and the followed text survive each refresh.
  buildLogBox(t) {
    this.stopFollow();
    this.logTask = t.Id;
    this.logFor = "";
    this.shownLog = "";
    this.logTitle = h("h3", {});
    this.followButton = h("button", {
      type: "button",
      "aria-pressed": "false",
      onclick: () => (this.following ? this.stopFollow("Stopped following.") : this.startFollow()),
    });
    this.logNote = h("p", { class: "note", role: "status" });
    this.logEl = h("pre", { id: "log", tabindex: "0", "aria-label": `Log of ${t.TaskName}` });
    this.logBox = h(
      "div",
      { class: "log-box" },
      h("div", { class: "log-head" }, this.logTitle, this.followButton, h("button", { type: "button", onclick: () => this.loadLog(true) }, "Reload log")),
      this.logNote,
      this.logEl,
    );
    this.attemptsKey = "";
    clear(this.taskPanel, this.taskTop, this.taskResults, this.depsBox, this.logBox);
  }

  paintLogHead(t) {
    this.logTitle.textContent = `Log of run ${this.chosenRun}`;
    this.logEl.setAttribute("aria-label", `Log of ${t.TaskName}, run ${this.chosenRun}`);
    this.followButton.textContent = this.following ? "Stop following" : "Follow";
    this.followButton.setAttribute("aria-pressed", this.following ? "true" : "false");
    this.followButton.disabled = !this.following && !this.canFollow(t);
    this.followButton.title = this.canFollow(t) || this.following ? "Poll the log every second" : "Only the current attempt of an unfinished task can be followed";
  }

  canFollow(t) {
    return !finished(t.Status) && this.chosenRun === t.RunNumber;
  }

  chooseRun(run) {
    if (run === this.chosenRun) return;
    this.stopFollow();
    this.chosenRun = run;
    this.runPinned = true;
    this.attemptsKey = "";
    this.drawTaskPanel();
  }

  async loadLog(replace) {
    const t = this.tasks.find((x) => x.Id === this.selected);
    if (!t || !this.logEl) return;
    const run = this.chosenRun;
    const wanted = `${t.Id}:${run}`;
    try {
      const text = (await call("GetTaskInstanceLog", { Id: t.Id, RunNumber: run })).TaskInstanceLog || "";
      if (!this.alive || this.selected !== t.Id || this.chosenRun !== run) return;
      if (replace || this.logFor !== wanted) {
        this.logEl.textContent = "";
        this.shownLog = "";
      }
      this.logFor = wanted;
      this.showLog(text);
      if (!this.following) this.logNote.textContent = text ? "" : "No output yet.";
    } catch (e) {
      if (!this.alive) return;
      this.logFor = wanted;
      this.logNote.textContent = `The log cannot be read: ${e.message}`;
    }
  }

  // Append what is new; stay at the bottom unless the user scrolled up.
  showLog(text) {
    const pre = this.logEl;
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 12;
    if (text.startsWith(this.shownLog)) {
      if (text.length > this.shownLog.length) pre.append(document.createTextNode(text.slice(this.shownLog.length)));
    } else {
      pre.textContent = text;
    }
    this.shownLog = text;
    if (this.following && atBottom) pre.scrollTop = pre.scrollHeight;
  }

  startFollow() {
    const t = this.tasks.find((x) => x.Id === this.selected);
    if (!t || !this.canFollow(t)) return;
    this.following = true;
    this.paintLogHead(t);
    this.logNote.textContent = `Following run ${this.chosenRun}…`;
    this.logEl.scrollTop = this.logEl.scrollHeight;
    this.followSoon(0);
  }

  stopFollow(note) {
    clearTimeout(this.followTimer);
    if (!this.following) return;
    this.following = false;
    const t = this.tasks.find((x) => x.Id === this.selected);
    if (t && this.followButton) this.paintLogHead(t);
    if (note && this.logNote) this.logNote.textContent = note;
  }

  followSoon(ms) {
    clearTimeout(this.followTimer);
    this.followTimer = setTimeout(() => this.followTick(), ms);
  }

  // Follow the task's current attempt: a retry or a rerun that starts a new run is
  // followed in turn; it stops when the task instance finishes.
  async followTick() {
    if (!this.alive || !this.following) return;
    if (document.visibilityState !== "visible") return; // resumed on visibilitychange
    const id = this.selected;
    const run = this.chosenRun;
    const still = () => this.alive && this.following && this.selected === id && this.chosenRun === run;
    try {
      // The status first: a log read after it says "finished" is the whole log.
      const now = (await call("GetTaskInstance", { Id: id })).TaskInstance;
      if (!still()) return;
      if (now.RunNumber > run) {
        this.chosenRun = now.RunNumber;
        this.logFor = `${id}:${now.RunNumber}`;
        this.shownLog = "";
        this.logEl.textContent = "";
        this.logNote.textContent = `Run ${now.RunNumber} has started; following it.`;
        this.attemptsKey = "";
        this.load();
        this.followSoon(0);
        return;
      }
      const text = (await call("GetTaskInstanceLog", { Id: id, RunNumber: run })).TaskInstanceLog || "";
      if (!still()) return;
      this.logFor = `${id}:${run}`;
      this.showLog(text);
      if (finished(now.Status)) {
        this.stopFollow(`Run ${run} finished: ${now.Status}. No longer following.`);
        this.load();
        return;
      }
      this.logNote.textContent = `Following run ${run} (${now.Status})…`;
    } catch (e) {
      if (!this.alive) return;
      this.logNote.textContent = `Following: ${e.message}; trying again.`;
    }
    if (this.following) this.followSoon(FOLLOW_MS);
  }

  async taskOp(op, id) {
    const t = this.tasks.find((x) => x.Id === id);
    if (!t) return;
    const ok = await confirmDialog(
      `${op.label} task instance`,
      `${op.verb} task instance ${t.Id} (${t.TaskName}) of instance ${this.inst.Id}? ${op.detail}`,
    );
    if (!ok) return;
    await this.perform(`${op.label} ${t.TaskName}`, async () => {
      const r = await call(op.action, { Ids: [t.Id] });
      return successInfo(r, new Map([[t.Id, `Task instance ${t.Id} (${t.TaskName})`]]));
    }, this.taskResults);
  }
}

// --- Helpers ------------------------------------------------------------------------------
// A short line in an edge's style, for the legend.
function edgeSample(kind) {
  return h("svg", { class: "edge-sample", width: 30, height: 10, "aria-hidden": "true" }, h("line", { class: kind, x1: 1, y1: 5, x2: 29, y2: 5 }));
}

function attemptOf(t) {
  return { RunNumber: t.RunNumber, Status: t.Status, StartedTime: t.StartedTime, FinishedTime: t.FinishedTime };
}

function successInfo(answer, labels) {
  return Object.entries(answer.SuccessInfo || {}).map(([id, r]) => ({
    id: Number(id),
    label: labels.get(Number(id)) || `Id ${id}`,
    success: !!r.Success,
    message: r.Message || "",
  }));
}

function compareNames(a, b) {
  return String(a).localeCompare(String(b));
}

function clip(text, n) {
  const s = String(text);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map((s) => s * 1000);
function tickStep(span) {
  return STEPS.find((s) => span / s <= 8) || STEPS[STEPS.length - 1];
}

function focusKey(el) {
  return { text: el.textContent, run: el.dataset ? el.dataset.run : undefined, tag: el.tagName, id: el.id };
}

function restoreFocus(root, key) {
  let found = null;
  if (key.id) found = root.querySelector(`#${CSS.escape(key.id)}`);
  if (!found && key.run) found = root.querySelector(`button[data-run="${CSS.escape(key.run)}"]`);
  if (!found) found = [...root.querySelectorAll(key.tag)].find((e) => e.textContent === key.text && !e.disabled);
  if (found) found.focus({ preventScroll: true });
}
