// Runs the instance page's dependency logic (static/pages/links.js, the module named by the
// first argument) on real server answers read from stdin, and prints what the page would
// draw and fetch as JSON (tests/web/test_console_dependencies.py).
import { readFileSync } from "node:fs";
const links = await import(process.argv[2]);
const input = JSON.parse(readFileSync(0, "utf8"));
const known = new Map(input.links.map(([id, items]) => [id, items]));
const graph = links.externalGraph(input.tasks, known, input.instance, (id) => input.rows[id] ?? 0);
const out = {
  boxes: graph.boxes.map((b) => ({
    id: b.up.Id, kinds: b.kinds, feeds: b.feeds,
    lines: links.boxLines(b, input.tz), url: links.instanceUrl(b.up),
  })),
  edges: graph.edges,
  texts: input.links.map(([id, items]) => [id, items.map((i) => links.dependencyText(i, input.instance))]),
  fetchFirst: links.linksToFetch(input.tasks, new Map(), null, input.instance),
  fetchAgain: links.linksToFetch(input.tasks, known, null, input.instance),
  fetchChosen: links.linksToFetch(input.tasks, known, input.tasks[1].Id, input.instance),
  fetchDone: links.linksToFetch(
    input.tasks.map((t) => ({ ...t, Status: "Success" })),
    new Map(input.links.map(([id, items]) => [id, items.map((i) => ({ ...i, TaskInstance: { ...i.TaskInstance, Status: "Success" } }))])),
    null, input.instance),
  tooMany: links.linksToFetch(
    Array.from({ length: links.MAX_LINKED_TASKS + 1 }, (_, n) => ({ Id: n + 1, Status: "NotRun" })),
    new Map(), 7, input.instance),
  removable: ["NotRun", "WaitTime", "WaitResource", "Running", "Success", "Failure"].filter((s) => links.REMOVABLE.has(s)),
};
console.log(JSON.stringify(out));
