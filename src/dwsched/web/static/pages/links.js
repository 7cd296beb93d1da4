// The dependencies of a workflow instance's tasks that leave it (docs/dependencies.md):
// upstream task instances of other workflows' instances (the same cycle: DependencyType
// Normal) and of previous cycles (CrossCycle), as ListUpstreamTaskInstances answers them.
// No DOM here: the instance page draws what these functions decide, and
// tests/web/test_instance_links.py checks them on a server's real answers outside a browser.
import { formatDate, formatTime, finished, statusGroup } from "../util.js";

// The statuses in which RemoveTaskInstanceDependencies is allowed (the server judges).
export const REMOVABLE = new Set(["NotRun", "WaitTime"]);
// An instance with more tasks than this has its tasks' upstreams read for the chosen task
// only (one ListUpstreamTaskInstances call per task otherwise).
export const MAX_LINKED_TASKS = 300;
const MARK = { waiting: "◷", running: "▶", success: "✓", failure: "✕" };

// "cross-cycle" (a previous cycle: drawn dashed) or "other-workflow" (the same cycle, in
// another workflow's instance: drawn solid).
export function edgeKind(dependencyType) {
  return dependencyType === "CrossCycle" ? "cross-cycle" : "other-workflow";
}

export function kindLabel(kind) {
  return kind === "cross-cycle" ? "previous cycle" : "other workflow";
}

// The neighbours that are not in the workflow instance `instanceId`.
export function outside(items, instanceId) {
  return (items || []).filter((i) => i.TaskInstance.WorkflowInstanceId !== instanceId);
}

// The address of a workflow instance's page.
export function instanceUrl(task) {
  return `/console/instances/${task.WorkflowInstanceId}?project=${task.ProjectId}`;
}

// How a neighbour's dependency reads in the task panel.
export function dependencyText(item, instanceId) {
  if (item.DependencyType === "CrossCycle") return "CrossCycle (previous cycle)";
  return item.TaskInstance.WorkflowInstanceId === instanceId ? "Normal" : "Normal (other workflow)";
}

// The DAG's external upstreams: one box per upstream task instance outside this workflow
// instance, with an edge to each task of this instance that waits for it. `rowOf(id)`: the
// vertical position of a task of this instance; boxes are ordered by the highest task they
// feed, so that edges cross little.
export function externalGraph(tasks, links, instanceId, rowOf = () => 0) {
  const boxes = new Map();
  const edges = [];
  for (const t of tasks) {
    for (const item of outside(links.get(t.Id), instanceId)) {
      const up = item.TaskInstance;
      const kind = edgeKind(item.DependencyType);
      let box = boxes.get(up.Id);
      if (!box) {
        box = { up, kinds: new Set(), feeds: [], row: Infinity };
        boxes.set(up.Id, box);
      }
      box.kinds.add(kind);
      box.feeds.push(t.Id);
      box.row = Math.min(box.row, rowOf(t.Id));
      edges.push({ from: up.Id, to: t.Id, kind });
    }
  }
  const ordered = [...boxes.values()].sort(
    (a, b) => a.row - b.row || String(a.up.TaskName).localeCompare(String(b.up.TaskName)) || a.up.TriggerTime - b.up.TriggerTime || a.up.Id - b.up.Id,
  );
  return {
    boxes: ordered.map((b) => ({ up: b.up, kinds: [...b.kinds].sort(), feeds: b.feeds })),
    edges,
  };
}

// The four lines of an external upstream's box: its task, its workflow instance, its
// BizDate and trigger time, its status and what kind of dependency it is.
export function boxLines(box, tz) {
  const up = box.up;
  const group = statusGroup(up.Status);
  const kinds = box.kinds.map(kindLabel).join(", ");
  return [
    String(up.TaskName),
    `${up.WorkflowName} · instance ${up.WorkflowInstanceId}`,
    `BizDate ${formatDate(up.Bizdate, tz)} · ${formatTime(up.TriggerTime, tz).slice(5, 16)}`,
    `${MARK[group]} ${up.Status} · ${kinds}`,
  ];
}

// The task instances whose upstreams to read now: every task the first time (unless the
// instance is too large: then the chosen task only), the chosen task always, and a task that
// waits outside the instance while it or one of those upstreams is unfinished. A task with
// no upstream outside the instance is read once: edges are made with the instances and
// only ever removed.
export function linksToFetch(tasks, links, selected, instanceId) {
  const small = tasks.length <= MAX_LINKED_TASKS;
  const wanted = [];
  for (const t of tasks) {
    const known = links.get(t.Id);
    if (t.Id === selected) wanted.push(t.Id);
    else if (!known) {
      if (small) wanted.push(t.Id);
    } else {
      const external = outside(known, instanceId);
      if (external.length && (!finished(t.Status) || external.some((i) => !finished(i.TaskInstance.Status)))) wanted.push(t.Id);
    }
  }
  return wanted;
}
