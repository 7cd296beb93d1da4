// The worker processes on the database and the resource groups' shared slot limits (the
// console view ListWorkers, for administrators); read only, refreshed every few seconds.
// Limits are set with `dwsched resource-groups set NAME --slots N`.
import { call } from "../api.js";
import { h, clear, errorBox } from "../util.js";

const REFRESH_MS = 5000;

function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

function groupName(name) {
  return name === "" ? "-" : name;
}

function table(label, headings, rows) {
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": label, tabindex: 0 },
    h(
      "table",
      { class: "instances" },
      h("caption", { class: "visually-hidden" }, label),
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, String(c)))))),
    ),
  );
}

export async function render(main) {
  const body = h("div", { id: "workers-body" });
  clear(
    main,
    h("h1", {}, "Workers"),
    h("p", { class: "muted" }, "The worker processes registered on this database, and the attempts of each resource group that run at once over all of them."),
    body,
  );
  let alive = true;
  let timer = null;
  async function load() {
    try {
      const answer = await call("ListWorkers", {});
      if (!alive) return;
      const workers = answer.Workers.map((w) => [
        w.Name,
        w.Host,
        w.Pid,
        w.Groups === null ? "all" : w.Groups.map(groupName).join(","),
        w.Slots,
        age(answer.Now - w.HeartbeatTime),
        w.State,
        w.Running,
      ]);
      const groups = answer.ResourceGroups.map((g) => [groupName(g.Name), g.Slots]);
      if (!answer.ResourceGroups.some((g) => g.Name === "*")) groups.push(["*", `${answer.DefaultSlots} (default)`]);
      clear(
        body,
        h("h2", {}, "Workers"),
        workers.length ? table("Workers", ["Name", "Host", "PID", "Groups", "Slots", "Heartbeat", "State", "Running"], workers) : h("p", { class: "muted" }, "No worker has registered."),
        h("h2", {}, "Resource groups"),
        table("Resource groups", ["Group", "Slots"], groups),
      );
    } catch (error) {
      if (alive) clear(body, errorBox(error));
    }
    if (alive) timer = setTimeout(load, REFRESH_MS);
  }
  await load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
