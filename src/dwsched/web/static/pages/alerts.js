// Alert rules (CreateAlertRule, GetAlertRule, ListAlertRules, UpdateAlertRule,
// DeleteAlertRule) and the alerts raised about this workspace (the console view
// ListAlertHistory), with each delivery's outcome. The editor builds the same
// TriggerCondition and Notification documents an SDK caller sends, and the server checks them
// as it checks any request: its error names the field, which the editor marks.
import { call } from "../api.js";
import { h, clear, errorBox, formatTime, toast, confirmDialog, link } from "../util.js";

const RULES_PAGE = 20;
const HISTORY_PAGE = 20;
const REFRESH_MS = 10000;
const TYPES = [
  ["Error", "Error: a task instance fails"],
  ["ExhaustedError", "ExhaustedError: fails after its automatic reruns"],
  ["Finished", "Finished: a task instance finishes"],
  ["Timeout", "Timeout: runs longer than N minutes"],
  ["UnFinished", "UnFinished: not done by hh:mm"],
  ["CycleUnfinished", "CycleUnfinished: a cycle not done by its time"],
  ["InstanceErrorCount", "InstanceErrorCount: failures of the day reach N"],
  ["InstanceErrorPercentage", "InstanceErrorPercentage: failures of the day reach N %"],
  ["ResourceGroupWaitCount", "ResourceGroupWaitCount: instances waiting for a group reach N"],
  ["ResourceGroupPercentage", "ResourceGroupPercentage: a group's slots in use reach N %"],
];
const CHANNELS = [
  ["Mail", "Mail"],
  ["Webhook", "Webhook"],
  ["Dingding", "DingTalk"],
  ["Weixin", "WeCom"],
  ["Feishu", "Feishu / Lark"],
];
// Each URL receiver, and an example of its optional Extension (docs/alerts.md).
const URL_RECEIVERS = [
  ["WebhookUrl", "Webhook URLs", '{"format": "slack"}'],
  ["DingdingUrl", "DingTalk robot URLs", '{"atAll": true}'],
  ["WeixinUrl", "WeCom robot URLs", '{"atAll": true}'],
  ["FeishuUrl", "Feishu robot URLs", '{"atAll": true}'],
];
// Which extension field each trigger type needs (domain.alerts.parse_trigger).
const NEEDS = {
  Error: ["rerun"],
  Timeout: ["timeout"],
  UnFinished: ["unfinished"],
  CycleUnfinished: ["cycles"],
  InstanceErrorCount: ["count"],
  ResourceGroupWaitCount: ["count"],
  InstanceErrorPercentage: ["percentage"],
  ResourceGroupPercentage: ["percentage"],
};

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function splitList(text) {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

// A number when the text is one, the text otherwise (the server names what is wrong).
function numberOr(text) {
  const t = text.trim();
  if (t === "") return undefined;
  return /^-?\d+$/.test(t) ? Number(t) : t;
}

function targetText(condition) {
  const target = condition.Target || {};
  const ids = (target.Ids || []).join(", ");
  const allowed = target.AllowTasks && target.AllowTasks.length ? ` (not ${target.AllowTasks.join(", ")})` : "";
  return `${target.Type} ${ids}${allowed}`;
}

function deliveryText(d) {
  const tries = plural(d.Tries, "try", "tries");
  const detail = d.Detail && d.State !== "sent" ? `: ${d.Detail}` : "";
  return `${d.Channel} ${d.Receiver} ${d.State} (${tries})${detail}`;
}

export async function render(main, ctx) {
  const project = ctx.project;
  const tz = project.TimeZone || "UTC";
  let alive = true;
  let timer = null;
  let rulePage = 1;
  const rulesBody = h("div", { id: "alert-rules" });
  const historyBody = h("div", { id: "alert-history" });
  clear(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Alerts"),
      h("button", { type: "button", class: "primary", id: "new-rule", onclick: () => openEditor(null) }, "New rule…"),
    ),
    h(
      "p",
      { class: "muted" },
      "Custom alert rules (the tenant's, as far as you may read the workspaces they watch) and the alerts raised about ",
      `${project.Name} (${project.Id}), newest first, with each delivery's outcome.`,
    ),
    h("h2", {}, "Rules"),
    rulesBody,
    h("h2", {}, "Alerts raised"),
    historyBody,
  );
  document.title = "Alerts · dwsched";

  async function loadRules() {
    let found;
    try {
      found = await call("ListAlertRules", { PageNumber: rulePage, PageSize: RULES_PAGE });
    } catch (error) {
      if (alive) clear(rulesBody, errorBox(error));
      return;
    }
    if (!alive) return;
    const info = found.PagingInfo;
    const rules = info.AlertRules || [];
    const total = Number(info.TotalCount);
    const pages = Math.max(1, Math.ceil(total / RULES_PAGE));
    const table = h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Alert rules", tabindex: 0 },
      h(
        "table",
        { class: "instances", id: "rules" },
        h("caption", { class: "visually-hidden" }, "Alert rules"),
        h("thead", {}, h("tr", {}, ["Id", "Name", "Trigger", "Target", "State", ""].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          rules.length
            ? rules.map((r) => ruleRow(r))
            : h("tr", { class: "empty" }, h("td", { colspan: 6 }, "No alert rules yet: New rule… makes one.")),
        ),
      ),
    );
    const pager =
      pages > 1
        ? h(
            "nav",
            { class: "pager", "aria-label": "Pages of alert rules" },
            h("button", { type: "button", disabled: rulePage <= 1, onclick: () => ((rulePage -= 1), loadRules()) }, "‹ Previous"),
            h("span", {}, `Page ${rulePage} of ${pages}`),
            h("button", { type: "button", disabled: rulePage >= pages, onclick: () => ((rulePage += 1), loadRules()) }, "Next ›"),
          )
        : null;
    clear(rulesBody, h("p", { class: "note" }, plural(total, "rule", "rules")), table, pager);
  }

  function ruleRow(rule) {
    const condition = rule.TriggerCondition || {};
    const toggle = h(
      "button",
      {
        type: "button",
        class: "rule-toggle",
        "aria-pressed": rule.Enabled ? "true" : "false",
        "aria-label": `${rule.Enabled ? "Disable" : "Enable"} ${rule.Name}`,
        onclick: async () => {
          toggle.disabled = true;
          try {
            await call("UpdateAlertRule", { Id: rule.Id, Enabled: !rule.Enabled });
            toast(`${rule.Name}: ${rule.Enabled ? "disabled" : "enabled"}.`);
          } catch (error) {
            toast(`${error.code || "Error"}: ${error.message}`, "error");
          }
          loadRules();
        },
      },
      rule.Enabled ? "Enabled" : "Disabled",
    );
    return h(
      "tr",
      { "data-id": rule.Id },
      h("td", { class: "num" }, String(rule.Id)),
      h("td", { class: "name" }, rule.Name),
      h("td", {}, condition.Type || ""),
      h("td", { class: "name" }, targetText(condition)),
      h("td", {}, toggle),
      h(
        "td",
        {},
        h("button", { type: "button", "aria-label": `Edit ${rule.Name}`, onclick: () => openEditor(rule.Id) }, "Edit…"),
        " ",
        h(
          "button",
          {
            type: "button",
            "aria-label": `Delete ${rule.Name}`,
            onclick: async () => {
              if (!(await confirmDialog("Delete alert rule", `Delete the rule ${rule.Name} (${rule.Id})? Its alerts stay in the history.`, "Delete"))) return;
              try {
                await call("DeleteAlertRule", { Id: rule.Id });
                toast(`${rule.Name}: deleted.`);
              } catch (error) {
                toast(`${error.code || "Error"}: ${error.message}`, "error");
              }
              loadRules();
            },
          },
          "Delete…",
        ),
      ),
    );
  }

  async function loadHistory() {
    let found;
    try {
      found = await call("ListAlertHistory", { ProjectId: project.Id, PageSize: HISTORY_PAGE });
    } catch (error) {
      if (alive) clear(historyBody, errorBox(error));
      return;
    }
    if (!alive) return;
    const alerts = found.Alerts || [];
    const zone = found.TimeZone || tz;
    const rows = alerts.map((a) =>
      h(
        "tr",
        { "data-id": a.Id, class: `alert-${a.State}` },
        h("td", { class: "time" }, formatTime(a.CreateTime, zone)),
        h("td", { class: "name" }, a.RuleName || (a.RuleId ? `rule ${a.RuleId}` : "run setting")),
        h("td", {}, a.Trigger),
        h(
          "td",
          { class: "name" },
          a.WorkflowInstanceId ? link(`/console/instances/${a.WorkflowInstanceId}`, a.TaskName || `instance ${a.WorkflowInstanceId}`) : a.Summary || "",
        ),
        h("td", {}, a.State),
        h("td", { class: "name" }, a.Deliveries.length ? h("ul", { class: "deliveries" }, a.Deliveries.map((d) => h("li", { class: `delivery-${d.State}` }, deliveryText(d)))) : "-"),
      ),
    );
    clear(
      historyBody,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-label": "Alerts raised", tabindex: 0 },
        h(
          "table",
          { class: "instances", id: "history" },
          h("caption", { class: "visually-hidden" }, "Alerts raised"),
          h("thead", {}, h("tr", {}, [`Raised (${zone})`, "Rule", "Trigger", "About", "State", "Deliveries"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows.length ? rows : h("tr", { class: "empty" }, h("td", { colspan: 6 }, "No alert has been raised about this workspace."))),
        ),
      ),
      found.More ? h("p", { class: "note" }, `The newest ${HISTORY_PAGE} are shown; \`dwsched alerts history\` lists more.`) : null,
    );
  }

  async function refresh() {
    await Promise.all([loadRules(), loadHistory()]);
  }

  async function tick() {
    await loadHistory();
    if (alive) timer = setTimeout(tick, REFRESH_MS);
  }

  async function openEditor(id) {
    let rule = null;
    if (id !== null) {
      try {
        rule = (await call("GetAlertRule", { Id: id })).AlertRule;
      } catch (error) {
        toast(`${error.code || "Error"}: ${error.message}`, "error");
        return;
      }
    }
    const saved = await editor(rule, project);
    if (saved) {
      toast(saved);
      refresh();
    }
  }

  await refresh();
  timer = setTimeout(tick, REFRESH_MS);
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

// The rule editor: a modal form; resolves with a message once saved, null when cancelled.
function editor(rule, project) {
  return new Promise((resolve) => {
    const condition = rule ? rule.TriggerCondition : { Type: "Error", Target: { Type: "Project", Ids: [project.Id] }, Extension: {} };
    const notification = rule ? rule.Notification : { Channels: [], Receivers: [] };
    const ext = condition.Extension || {};
    const receivers = Object.fromEntries((notification.Receivers || []).map((r) => [r.ReceiverType, r]));
    const fields = [];

    function field(id, label, input, param, wide = false) {
      input.id = id;
      if (param) input.dataset.param = param;
      const box = h("div", { class: `field rule-field${wide ? " wide" : ""}` }, h("label", { for: id }, label), input);
      fields.push(box);
      return box;
    }
    const text = (value, attrs = {}) => h("input", { type: "text", autocomplete: "off", value: value ?? "", ...attrs });

    const name = text(rule ? rule.Name : "");
    const enabled = h("input", { type: "checkbox", id: "rule-enabled", checked: rule ? rule.Enabled : true });
    const type = h("select", {}, TYPES.map(([v, label]) => h("option", { value: v, selected: v === condition.Type }, label)));
    const targetType = h(
      "select",
      {},
      [
        ["Project", "Workspace (Project)"],
        ["Task", "Tasks (Task)"],
        ["ResourceGroup", "Resource groups"],
      ].map(([v, label]) => h("option", { value: v, selected: v === condition.Target.Type }, label)),
    );
    const targetIds = text((condition.Target.Ids || []).join(", "));
    const allowTasks = text((condition.Target.AllowTasks || []).join(", "));
    const rerun = h("input", { type: "checkbox", id: "rule-rerun", checked: Boolean(ext.Error && ext.Error.AutoRerunAlertEnabled) });
    const timeout = text(ext.Timeout ? ext.Timeout.TimeoutInMinutes : "", { inputmode: "numeric" });
    const unfinished = text(ext.UnFinished ? ext.UnFinished.UnFinishedTime : "", { placeholder: "hh:mm" });
    const cycles = h("textarea", { rows: 3, placeholder: "1 02:00" });
    cycles.value = ext.CycleUnfinished ? ext.CycleUnfinished.CycleAndTime.map((c) => `${c.CycleId} ${c.Time}`).join("\n") : "";
    const count = text(ext.InstanceErrorCount ? ext.InstanceErrorCount.Count : "", { inputmode: "numeric" });
    const percentage = text(ext.InstanceErrorPercentage ? ext.InstanceErrorPercentage.Percentage : "", { inputmode: "numeric" });

    const channels = CHANNELS.map(([v, label]) => {
      const box = h("input", { type: "checkbox", id: `channel-${v}`, value: v, checked: (notification.Channels || []).includes(v) });
      return [v, box, h("label", { class: "check", for: `channel-${v}` }, box, label)];
    });
    const owner = h("input", { type: "checkbox", id: "receiver-owner", checked: Boolean(receivers.TaskOwner) });
    const users = text(receivers.AliUid ? receivers.AliUid.ReceiverValues.join(", ") : "", { placeholder: "user names or ids" });
    const urls = URL_RECEIVERS.map(([v, label, example]) => {
      const area = h("textarea", { rows: 2, placeholder: "one URL a line" });
      area.value = receivers[v] ? receivers[v].ReceiverValues.join("\n") : "";
      const extension = text(receivers[v] && receivers[v].Extension ? receivers[v].Extension : "", { placeholder: example });
      return [v, label, area, extension];
    });
    const interval = text(notification.IntervalInMinutes ?? "", { inputmode: "numeric" });
    const maximum = text(notification.Maximum ?? "", { inputmode: "numeric" });
    const silenceStart = text(notification.SilenceStartTime ?? "", { placeholder: "HH:mm" });
    const silenceEnd = text(notification.SilenceEndTime ?? "", { placeholder: "HH:mm" });

    const T = "TriggerCondition";
    const E = `${T}.Extension`;
    const extensionBoxes = {
      rerun: h("div", { class: "field rule-field" }, h("label", { class: "check", for: "rule-rerun" }, rerun, "Also alert each failed attempt that will be rerun (AutoRerunAlertEnabled)")),
      timeout: field("rule-timeout", "Minutes running (1–21600)", timeout, `${E}.Timeout.TimeoutInMinutes`),
      unfinished: field("rule-unfinished", "Not done by (hh:mm, hh 0–47: 24–47 the next day)", unfinished, `${E}.UnFinished.UnFinishedTime`),
      cycles: field("rule-cycles", "Cycles and times (a line each: cycle 1–288, hh:mm)", cycles, `${E}.CycleUnfinished.CycleAndTime`),
      count: field("rule-count", "Count (1–10000)", count, `${E}.InstanceErrorCount.Count`),
      percentage: field("rule-percentage", "Percentage (1–100)", percentage, `${E}.InstanceErrorPercentage.Percentage`),
    };
    rerun.dataset.param = `${E}.Error.AutoRerunAlertEnabled`;
    const allowBox = field("rule-allow", "Tasks not watched (ids)", allowTasks, `${T}.Target.AllowTasks`);

    function shape() {
      const needs = NEEDS[type.value] || [];
      for (const [key, box] of Object.entries(extensionBoxes)) box.hidden = !needs.includes(key);
      allowBox.hidden = targetType.value !== "Project";
    }
    type.addEventListener("change", shape);
    targetType.addEventListener("change", shape);

    const problem = h("div", { class: "rule-problem", role: "alert" });
    const form = h(
      "form",
      { class: "rule-form", novalidate: true },
      h(
        "fieldset",
        {},
        h("legend", {}, "Rule"),
        field("rule-name", "Name", name, "Name"),
        h("label", { class: "check", for: "rule-enabled" }, enabled, "Enabled"),
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, "When"),
        field("rule-type", "Trigger", type, `${T}.Type`),
        field("rule-target-type", "Watch", targetType, `${T}.Target.Type`),
        field("rule-target-ids", "Ids (workspace or task ids, or group names)", targetIds, `${T}.Target.Ids`),
        allowBox,
        Object.values(extensionBoxes),
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, "Tell"),
        h("div", { class: "rule-channels", role: "group", "aria-label": "Channels", "data-param": "Notification.Channels" }, h("span", { class: "muted" }, "Channels:"), channels.map((c) => c[2])),
        h("label", { class: "check", for: "receiver-owner" }, owner, "The task's owner (TaskOwner)"),
        field("receiver-users", "Users (AliUid)", users, "Notification.Receivers"),
        urls.map(([v, label, area, extension]) => [
          field(`receiver-${v}`, label, area, `Notification.Receivers.${v}`, true),
          field(`receiver-${v}-extension`, `${label}: Extension (JSON, optional)`, extension, `Notification.Receivers.Extension`),
        ]),
        field("rule-interval", "Re-alert every (minutes, 5–10000)", interval, "Notification.IntervalInMinutes"),
        field("rule-maximum", "At most a day (1–10000)", maximum, "Notification.Maximum"),
        field("rule-silence-start", "Silent from (HH:mm)", silenceStart, "Notification.SilenceStartTime"),
        field("rule-silence-end", "Silent until (HH:mm)", silenceEnd, "Notification.SilenceEndTime"),
      ),
      problem,
    );

    function documents() {
      const targetValues = splitList(targetIds.value).map((v) => (targetType.value === "ResourceGroup" ? v : numberOr(v)));
      const target = { Type: targetType.value, Ids: targetValues };
      if (targetType.value === "Project" && allowTasks.value.trim()) target.AllowTasks = splitList(allowTasks.value).map(numberOr);
      const extension = {};
      const needs = NEEDS[type.value] || [];
      if (needs.includes("rerun") && rerun.checked) extension.Error = { AutoRerunAlertEnabled: true };
      if (needs.includes("timeout")) extension.Timeout = { TimeoutInMinutes: numberOr(timeout.value) };
      if (needs.includes("unfinished")) extension.UnFinished = { UnFinishedTime: unfinished.value.trim() || undefined };
      if (needs.includes("cycles")) {
        extension.CycleUnfinished = {
          CycleAndTime: cycles.value
            .split("\n")
            .map((line) => line.trim())
            .filter(Boolean)
            .map((line) => {
              const [cycle, time] = line.split(/\s+/);
              return { CycleId: numberOr(cycle || ""), Time: time };
            }),
        };
      }
      if (needs.includes("count")) extension.InstanceErrorCount = { Count: numberOr(count.value) };
      if (needs.includes("percentage")) extension.InstanceErrorPercentage = { Percentage: numberOr(percentage.value) };
      const chosen = [];
      if (owner.checked) chosen.push({ ReceiverType: "TaskOwner" });
      if (users.value.trim()) chosen.push({ ReceiverType: "AliUid", ReceiverValues: splitList(users.value) });
      for (const [v, , area, ext] of urls) {
        const values = area.value
          .split("\n")
          .map((s) => s.trim())
          .filter(Boolean);
        if (!values.length) continue;
        const item = { ReceiverType: v, ReceiverValues: values };
        if (ext.value.trim()) item.Extension = ext.value.trim();
        chosen.push(item);
      }
      const notice = { Channels: channels.filter((c) => c[1].checked).map((c) => c[0]), Receivers: chosen };
      for (const [key, input] of [
        ["IntervalInMinutes", interval],
        ["Maximum", maximum],
      ]) {
        const value = numberOr(input.value);
        if (value !== undefined) notice[key] = value;
      }
      if (silenceStart.value.trim()) notice.SilenceStartTime = silenceStart.value.trim();
      if (silenceEnd.value.trim()) notice.SilenceEndTime = silenceEnd.value.trim();
      return { TriggerCondition: { Type: type.value, Target: target, Extension: extension }, Notification: notice };
    }

    // The control for the field the server's message names (the longest path it contains).
    function markProblem(error) {
      for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      clear(problem, errorBox(error));
      const message = error.message || "";
      let best = null;
      for (const el of form.querySelectorAll("[data-param]")) {
        const param = el.dataset.param;
        if ((message.includes(param) || message.includes(param.replace(/\.(WebhookUrl|DingdingUrl|WeixinUrl|FeishuUrl)$/, ""))) && (!best || param.length > best.dataset.param.length)) best = el;
      }
      if (best && !best.closest("[hidden]")) {
        best.setAttribute("aria-invalid", "true");
        best.focus?.();
      }
    }

    const save = h("button", { type: "submit", class: "primary" }, rule ? "Save" : "Create");
    const d = h(
      "dialog",
      { class: "dialog rule-editor", "aria-labelledby": "rule-editor-title" },
      h("h2", { id: "rule-editor-title" }, rule ? `Edit alert rule ${rule.Id}` : "New alert rule"),
      form,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", onclick: () => done(null) }, "Cancel"),
        save,
      ),
    );
    save.setAttribute("form", "rule-form");
    form.id = "rule-form";
    function done(value) {
      d.close();
      d.remove();
      resolve(value);
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      save.disabled = true;
      const docs = documents();
      const parameters = { Name: name.value, Enabled: enabled.checked, ...docs };
      try {
        if (rule) {
          await call("UpdateAlertRule", { Id: rule.Id, ...parameters });
          done(`${name.value}: saved.`);
        } else {
          const made = await call("CreateAlertRule", parameters);
          done(`${name.value}: created (rule ${made.Id}).`);
        }
      } catch (error) {
        markProblem(error);
      } finally {
        save.disabled = false;
      }
    });
    d.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(null);
    });
    shape();
    document.body.append(d);
    d.showModal();
    name.focus();
  });
}
