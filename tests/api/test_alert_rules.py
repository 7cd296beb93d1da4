"""Custom alert rules through the official SDK over real HTTP, on both databases:
Create/Get/List/Update/DeleteAlertRule with the SDK's models, every validation range at its
boundaries, the refused types, targets, receivers and channels, masked webhook URLs (and an
update that sends one back), list filters and paging, authorisation and the audit log, and
the evaluator's lookup (`tx.alerts.rules_for`).

Many checks share one server per backend (the module's `live`): each test works in
workspaces of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alibabacloud_dataworks_public20240518 import models as M
from alibabacloud_dataworks_public20240518.client import Client as SdkClient

from dwsched.clock import SystemClock
from dwsched.domain import alerts
from dwsched.store.schema import alert_rules, tasks
from tests.api.sdk_helpers import assert_sdk_error, sdk_error
from tests.api.test_access import user_client
from tests.engine.test_engine import flow, node
from tests.support.factories import project
from tests.support.server import LiveServer

NOW = SystemClock().now_ms()
DING = "https://oapi.dingtalk.com/robot/send?access_token=SECRET-ding-1"
DING_2 = "https://oapi.dingtalk.com/robot/send?access_token=SECRET-ding-2"
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/SECRET-feishu"
HOOK = "http://127.0.0.1:9/alerts/SECRET-hook?sig=SECRET-sig"


def deployed_tasks(live: LiveServer, project_id: int, count: int = 2) -> list[int]:
    """Deploy a workflow of `count` nodes in the workspace; its task ids."""
    root = live.sdk()
    spec = flow([node(f"n{i}", "VIRTUAL") for i in range(count)])
    job = root.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=project_id, spec=json.dumps(spec))
    ).body.async_job
    workflow_id = root.get_workflow_definition(
        M.GetWorkflowDefinitionRequest(id=job.response)
    ).body.workflow_definition.workflow_id
    with live.store.read() as tx:
        found = tx.conn.execute(
            sa.select(tasks.c.id).where(tasks.c.workflow_id == workflow_id).order_by(tasks.c.id)
        )
        return [int(i) for i in found.scalars()]


def member(live: LiveServer, project_id: int, user_id: int, *roles: str) -> None:
    with live.store.write() as tx:
        tx.members.add(project_id, user_id, list(roles), NOW)


def condition(
    ids: list[Any], kind: str = "Error", target: str = "Task", **extension: Any
) -> M.CreateAlertRuleRequestTriggerCondition:
    return M.CreateAlertRuleRequestTriggerCondition().from_map(
        {"Type": kind, "Target": {"Type": target, "Ids": ids}, "Extension": extension}
    )


def notice(**fields: Any) -> M.CreateAlertRuleRequestNotification:
    found: dict[str, Any] = {
        "Channels": ["Mail"],
        "Receivers": [{"ReceiverType": "TaskOwner"}],
    }
    found.update(fields)
    return M.CreateAlertRuleRequestNotification().from_map(found)


OWNER = "alert-owner"  # the owner of the rules the tenant's key makes (it is nobody)


@pytest.fixture(autouse=True)
def owner(live: LiveServer) -> None:
    with live.store.write() as tx:
        if not any(u.name == OWNER for u in tx.users.all()):
            tx.users.create(OWNER, OWNER, NOW)


def create(client: SdkClient, trigger: Any, notification: Any = None, **fields: Any) -> int:
    fields.setdefault("owner", OWNER)
    request = M.CreateAlertRuleRequest(
        name=fields.pop("name", "rule"),
        enabled=fields.pop("enabled", True),
        trigger_condition=trigger,
        notification=notification if notification is not None else notice(),
        **fields,
    )
    rule_id = client.create_alert_rule(request).body.id
    assert isinstance(rule_id, int)
    return rule_id


def get(client: SdkClient, rule_id: int) -> M.GetAlertRuleResponseBodyAlertRule:
    body = client.get_alert_rule(M.GetAlertRuleRequest(id=str(rule_id))).body
    assert body.request_id
    return body.alert_rule


def listed(client: SdkClient, **fields: Any) -> M.ListAlertRulesResponseBodyPagingInfo:
    fields.setdefault("page_number", 1)
    fields.setdefault("page_size", 100)
    return client.list_alert_rules(M.ListAlertRulesRequest(**fields)).body.paging_info


def test_rules_round_trip_with_the_sdk_models(live: LiveServer) -> None:
    root = live.sdk()
    owner_client, owner_id = user_client(live, "rules-owner", "AdministratorAccess")
    del owner_client
    pid = project(live.store).id
    t1, t2 = deployed_tasks(live, pid)
    notification = notice(
        Channels=["Mail", "Dingding", "Feishu", "Webhook"],
        Receivers=[
            {"ReceiverType": "TaskOwner"},
            {"ReceiverType": "AliUid", "ReceiverValues": ["rules-owner"]},
            {
                "ReceiverType": "DingdingUrl",
                "ReceiverValues": [DING, DING_2],
                "Extension": '{"atAll": true}',
            },
            {"ReceiverType": "FeishuUrl", "ReceiverValues": [FEISHU]},
            {"ReceiverType": "WebhookUrl", "ReceiverValues": [HOOK]},
        ],
        IntervalInMinutes=30,
        Maximum=3,
        SilenceStartTime="23:00",
        SilenceEndTime="07:30",
    )
    trigger = condition([t1], "Timeout", Timeout={"TimeoutInMinutes": 90})
    rule_id = create(root, trigger, notification, name="late nightly", owner="rules-owner")

    rule = get(root, rule_id)
    assert (rule.id, rule.name, rule.owner, rule.enabled) == (
        rule_id,
        "late nightly",
        str(owner_id),
        True,
    )
    assert rule.trigger_condition.type == "Timeout"
    assert rule.trigger_condition.target.type == "Task"
    assert rule.trigger_condition.target.ids == [t1]
    assert rule.trigger_condition.extension.timeout.timeout_in_minutes == 90
    n = rule.notification
    assert n.channels == ["Mail", "Dingding", "Feishu", "Webhook"]
    assert (n.interval_in_minutes, n.maximum) == (30, 3)
    assert (n.silence_start_time, n.silence_end_time) == ("23:00", "07:30")
    by_type = {r.receiver_type: r for r in n.receivers}
    assert by_type["TaskOwner"].receiver_values in (None, [])
    assert by_type["AliUid"].receiver_values == [str(owner_id)]
    masked_ding = "https://oapi.dingtalk.com/robot/****?access_token=****"
    assert by_type["DingdingUrl"].receiver_values == [masked_ding, masked_ding]
    assert by_type["DingdingUrl"].extension == '{"atAll": true}'
    assert by_type["FeishuUrl"].receiver_values == [
        "https://open.feishu.cn/open-apis/bot/v2/hook/****"
    ]
    assert by_type["WebhookUrl"].receiver_values == ["http://127.0.0.1:9/alerts/****?sig=****"]
    # No answer, no stored row, no audit record holds a URL whole.
    with live.store.read() as tx:
        stored = tx.conn.execute(
            sa.select(alert_rules.c.notification).where(alert_rules.c.id == rule_id)
        ).scalar_one()
        audit = [e.parameters for e in tx.audit.entries(limit=50) if e.action == "CreateAlertRule"]
    assert "SECRET" not in stored and audit and not any("SECRET" in a for a in audit)
    assert "SECRET" not in json.dumps(
        root.get_alert_rule(M.GetAlertRuleRequest(id=str(rule_id))).body.to_map()
    )

    # A partial update: the fields sent change, the others keep their values; the masked
    # URLs sent back (as Get showed them) keep the stored ones.
    sent_back = n.to_map()
    sent_back["Maximum"] = 5
    ok = root.update_alert_rule(
        M.UpdateAlertRuleRequest(
            id=rule_id,
            enabled=False,
            notification=M.UpdateAlertRuleRequestNotification().from_map(sent_back),
        )
    ).body
    assert ok.success is True and ok.request_id
    root.update_alert_rule(
        M.UpdateAlertRuleRequest(
            id=rule_id,
            trigger_condition=M.UpdateAlertRuleRequestTriggerCondition().from_map(
                {"Target": {"Type": "Task", "Ids": [t1, t2]}}
            ),
        )
    )
    rule = get(root, rule_id)
    assert (rule.name, rule.enabled, rule.notification.maximum) == ("late nightly", False, 5)
    assert rule.trigger_condition.extension.timeout.timeout_in_minutes == 90
    assert rule.trigger_condition.target.ids == [t1, t2]
    with live.store.read() as tx:
        kept = tx.alerts.get(rule_id).notification
    urls = {r.type: r.values for r in kept.receivers}
    assert urls[alerts.ReceiverType.DINGDING_URL] == (DING, DING_2)
    assert urls[alerts.ReceiverType.WEBHOOK_URL] == (HOOK,)
    # A masked URL that stands for nothing stored is refused.
    forged = dict(sent_back, Receivers=[*sent_back["Receivers"]])
    forged["Receivers"] = [
        {"ReceiverType": "WebhookUrl", "ReceiverValues": ["https://evil.example/****"]}
        if r["ReceiverType"] == "WebhookUrl"
        else r
        for r in forged["Receivers"]
    ]
    error = sdk_error(
        lambda: root.update_alert_rule(
            M.UpdateAlertRuleRequest(
                id=rule_id,
                notification=M.UpdateAlertRuleRequestNotification().from_map(forged),
            )
        )
    )
    assert_sdk_error(error, 400, "InvalidParameter", "Notification.Receivers.ReceiverValues")

    # The evaluator's lookup: enabled rules watching a task, by Task or Project target.
    project_rule = create(root, condition([pid], "Error", "Project"), name="whole workspace")
    create(root, condition([pid], "Finished", "Project"), name="disabled", enabled=False)
    excluding = create(
        root,
        M.CreateAlertRuleRequestTriggerCondition().from_map(
            {
                "Type": "ExhaustedError",
                "Target": {"Type": "Project", "Ids": [pid], "AllowTasks": [t2]},
            }
        ),
        name="all but t2",
    )
    root.update_alert_rule(M.UpdateAlertRuleRequest(id=rule_id, enabled=True))
    with live.store.read() as tx:
        for_t1 = [r.id for r in tx.alerts.rules_for(t1, pid)]
        for_t2 = [r.id for r in tx.alerts.rules_for(t2, pid)]
        errors_only = [r.id for r in tx.alerts.rules_for(t1, pid, [alerts.TriggerType.ERROR])]
        timeouts = [r.id for r in tx.alerts.enabled([alerts.TriggerType.TIMEOUT])]
    assert for_t1 == [rule_id, project_rule, excluding]
    assert for_t2 == [rule_id, project_rule]
    assert errors_only == [project_rule]
    assert rule_id in timeouts

    # Delete, then the id is gone: 404 for the tenant's key (a tenant administrator).
    done = root.delete_alert_rule(M.DeleteAlertRuleRequest(id=excluding)).body
    assert done.success is True
    for call in (
        lambda: root.delete_alert_rule(M.DeleteAlertRuleRequest(id=excluding)),
        lambda: root.get_alert_rule(M.GetAlertRuleRequest(id=str(excluding))),
        lambda: root.update_alert_rule(M.UpdateAlertRuleRequest(id=excluding, name="x")),
    ):
        assert_sdk_error(sdk_error(call), 404, "Invalid.AlertRule.NotExist", str(excluding))


def test_list_filters_and_paging(live: LiveServer) -> None:
    root = live.sdk()
    _, alice = user_client(live, "list-alice")
    _, bob = user_client(live, "list-bob")
    pid = project(live.store).id
    t1, t2 = deployed_tasks(live, pid)
    other = project(live.store).id
    (t3,) = deployed_tasks(live, other, 1)
    mine = [
        create(root, condition([t1]), name="Nightly errors", owner="list-alice"),
        create(
            root,
            condition([t2], "UnFinished", UnFinished={"UnFinishedTime": "30:00"}),
            notice(Receivers=[{"ReceiverType": "AliUid", "ReceiverValues": [str(bob)]}]),
            name="late nightly",
            owner="list-bob",
        ),
        create(root, condition([pid], "Finished", "Project"), name="done", owner="list-alice"),
        create(root, condition([t3]), name="other workspace nightly", owner="list-bob"),
    ]
    every = listed(root)
    ours = [r for r in every.alert_rules if r.id in mine]
    assert [r.id for r in ours] == mine
    assert (every.page_number, every.page_size) == (1, 100)
    assert every.total_count >= 4
    assert ours[1].trigger_condition.extension.un_finished.un_finished_time == "30:00"
    assert ours[0].owner == str(alice)

    def ids(**fields: Any) -> list[int]:
        return [r.id for r in listed(root, **fields).alert_rules if r.id in mine]

    assert ids(name="NIGHTLY") == [mine[0], mine[1], mine[3]]
    assert ids(owner="list-alice") == [mine[0], mine[2]]
    assert ids(owner=str(bob)) == [mine[1], mine[3]]
    assert ids(owner="nobody-at-all") == []
    assert ids(receiver="list-bob") == [mine[1]]
    assert ids(types=["UnFinished", "Finished"]) == [mine[1], mine[2]]
    assert ids(task_ids=[t1]) == [mine[0], mine[2]]
    assert ids(task_ids=[t3]) == [mine[3]]
    # Paging over a filter that only these rules match.
    pages = [listed(root, owner="list-bob", page_number=n, page_size=1) for n in (1, 2, 3)]
    assert [[r.id for r in p.alert_rules] for p in pages] == [[mine[1]], [mine[3]], []]
    assert {p.total_count for p in pages} == {2}
    for field, value, name in (
        ("page_size", 101, "PageSize"),
        ("page_number", 0, "PageNumber"),
        ("types", ["Nope"], "Types"),
    ):
        error = sdk_error(lambda f=field, v=value: listed(root, **{f: v}))
        assert_sdk_error(error, 400, "InvalidParameter", name)


# (TriggerCondition, Notification, the parameter the refusal names, words of its message):
# every range at both sides of its bounds, the refused values, the missing pieces.
def _bad_cases(t1: int, pid: int) -> list[tuple[dict[str, Any], dict[str, Any] | None, str, str]]:
    task = {"Type": "Task", "Ids": [t1]}
    ext = "TriggerCondition.Extension"

    def on(kind: str, **extension: Any) -> dict[str, Any]:
        return {"Type": kind, "Target": task, "Extension": extension}

    return [
        (
            on("Timeout", Timeout={"TimeoutInMinutes": 0}),
            None,
            f"{ext}.Timeout.TimeoutInMinutes",
            "between 1 and 21600",
        ),
        (
            on("Timeout", Timeout={"TimeoutInMinutes": 21601}),
            None,
            f"{ext}.Timeout.TimeoutInMinutes",
            "21601",
        ),
        (on("Timeout"), None, f"{ext}.Timeout", "missing"),
        (
            on("UnFinished", UnFinished={"UnFinishedTime": "48:00"}),
            None,
            f"{ext}.UnFinished.UnFinishedTime",
            "0-47",
        ),
        (
            on("UnFinished", UnFinished={"UnFinishedTime": "12:60"}),
            None,
            f"{ext}.UnFinished.UnFinishedTime",
            "0-59",
        ),
        (
            on("UnFinished", UnFinished={"UnFinishedTime": "noon"}),
            None,
            f"{ext}.UnFinished.UnFinishedTime",
            "hh:mm",
        ),
        (
            on(
                "CycleUnfinished",
                CycleUnfinished={"CycleAndTime": [{"CycleId": 0, "Time": "01:00"}]},
            ),
            None,
            f"{ext}.CycleUnfinished.CycleAndTime.CycleId",
            "between 1 and 288",
        ),
        (
            on(
                "CycleUnfinished",
                CycleUnfinished={"CycleAndTime": [{"CycleId": 289, "Time": "01:00"}]},
            ),
            None,
            f"{ext}.CycleUnfinished.CycleAndTime.CycleId",
            "289",
        ),
        (
            on(
                "CycleUnfinished",
                CycleUnfinished={"CycleAndTime": [{"CycleId": 2, "Time": "48:00"}]},
            ),
            None,
            f"{ext}.CycleUnfinished.CycleAndTime.Time",
            "0-47",
        ),
        (
            on(
                "CycleUnfinished",
                CycleUnfinished={"CycleAndTime": [{"CycleId": 2, "Time": "1:00"}] * 2},
            ),
            None,
            f"{ext}.CycleUnfinished.CycleAndTime.CycleId",
            "twice",
        ),
        (
            on(
                "CycleUnfinished",
                CycleUnfinished={"CycleAndTime": [{"CycleId": 1, "Time": "1:00"}] * 289},
            ),
            None,
            f"{ext}.CycleUnfinished.CycleAndTime",
            "at most 288",
        ),
        (
            on("InstanceErrorCount", InstanceErrorCount={"Count": 0}),
            None,
            f"{ext}.InstanceErrorCount.Count",
            "between 1 and 10000",
        ),
        (
            on("InstanceErrorCount", InstanceErrorCount={"Count": 10001}),
            None,
            f"{ext}.InstanceErrorCount.Count",
            "10001",
        ),
        (
            on("InstanceErrorPercentage", InstanceErrorPercentage={"Percentage": 0}),
            None,
            f"{ext}.InstanceErrorPercentage.Percentage",
            "between 1 and 100",
        ),
        (
            on("InstanceErrorPercentage", InstanceErrorPercentage={"Percentage": 101}),
            None,
            f"{ext}.InstanceErrorPercentage.Percentage",
            "101",
        ),
        (
            on("Error", Error={"AutoRerunAlertEnabled": "yes"}),
            None,
            f"{ext}.Error.AutoRerunAlertEnabled",
            "true or false",
        ),
        (on("InstanceKeyword"), None, "TriggerCondition.Type", "keywords"),
        (on("InstanceTransferComplete"), None, "TriggerCondition.Type", "InstanceTransferComplete"),
        (on("InstanceTransferFluctuate"), None, "TriggerCondition.Type", "compare"),
        (on("Whatever"), None, "TriggerCondition.Type", "must be one of"),
        (
            {"Type": "Error", "Target": {"Type": "Baseline", "Ids": [1]}},
            None,
            "TriggerCondition.Target.Type",
            "no baselines",
        ),
        (
            {"Type": "Error", "Target": {"Type": "BizProcess", "Ids": [1]}},
            None,
            "TriggerCondition.Target.Type",
            "business processes",
        ),
        (
            {"Type": "Error", "Target": {"Type": "Task", "Ids": []}},
            None,
            "TriggerCondition.Target.Ids",
            "missing",
        ),
        (
            {"Type": "Error", "Target": {"Type": "Task", "Ids": list(range(1, 102))}},
            None,
            "TriggerCondition.Target.Ids",
            "at most 100",
        ),
        (
            {"Type": "Error", "Target": {"Type": "Task", "Ids": [t1], "AllowTasks": [t1]}},
            None,
            "TriggerCondition.Target.AllowTasks",
            "Project targets only",
        ),
        (
            {"Type": "Error", "Target": {"Type": "ResourceGroup", "Ids": ["default"]}},
            None,
            "TriggerCondition.Target.Type",
            "cannot be ResourceGroup",
        ),
        (
            {
                "Type": "ResourceGroupWaitCount",
                "Target": task,
                "Extension": {"InstanceErrorCount": {"Count": 5}},
            },
            None,
            "TriggerCondition.Target.Type",
            "must be ResourceGroup",
        ),
        (
            on("Error"),
            {"Channels": ["Sms"], "Receivers": [{"ReceiverType": "TaskOwner"}]},
            "Notification.Channels",
            "no SMS or phone gateway",
        ),
        (
            on("Error"),
            {"Channels": ["Phone"], "Receivers": [{"ReceiverType": "TaskOwner"}]},
            "Notification.Channels",
            "use Mail",
        ),
        (
            on("Error"),
            {"Channels": [], "Receivers": [{"ReceiverType": "TaskOwner"}]},
            "Notification.Channels",
            "missing",
        ),
        (on("Error"), {"Channels": ["Mail"], "Receivers": []}, "Notification.Receivers", "missing"),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "ShiftSchedule", "ReceiverValues": ["x"]}],
            },
            "Notification.Receivers.ReceiverType",
            "shift schedules",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "AliUid", "ReceiverValues": ["no-such-user"]}],
            },
            "Notification.Receivers.ReceiverValues",
            "names no user",
        ),
        (
            on("Error"),
            {
                "Channels": ["Webhook"],
                "Receivers": [
                    {"ReceiverType": "WebhookUrl", "ReceiverValues": ["ftp://x.example/a"]}
                ],
            },
            "Notification.Receivers.ReceiverValues",
            "http or https",
        ),
        (
            on("Error"),
            {
                "Channels": ["Webhook"],
                "Receivers": [
                    {"ReceiverType": "WebhookUrl", "ReceiverValues": ["https://u:p@x.example/a"]}
                ],
            },
            "Notification.Receivers.ReceiverValues",
            "password",
        ),
        (
            on("Error"),
            {
                "Channels": ["Webhook"],
                "Receivers": [
                    {"ReceiverType": "WebhookUrl", "ReceiverValues": ["https://x.example/****"]}
                ],
            },
            "Notification.Receivers.ReceiverValues",
            "masked",
        ),
        (
            on("Error"),
            {
                "Channels": ["Webhook"],
                "Receivers": [
                    {
                        "ReceiverType": "WebhookUrl",
                        "ReceiverValues": [f"https://x.example/{i}" for i in range(21)],
                    }
                ],
            },
            "Notification.Receivers.ReceiverValues",
            "at most 20",
        ),
        (
            on("Error"),
            {"Channels": ["Webhook"], "Receivers": [{"ReceiverType": "TaskOwner"}]},
            "Notification.Channels",
            "needs a WebhookUrl receiver",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [
                    {"ReceiverType": "TaskOwner"},
                    {"ReceiverType": "FeishuUrl", "ReceiverValues": [FEISHU]},
                ],
            },
            "Notification.Receivers",
            "without the Feishu channel",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "TaskOwner", "ReceiverValues": ["x"]}],
            },
            "Notification.Receivers.ReceiverValues",
            "no values",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "TaskOwner"}],
                "IntervalInMinutes": 4,
            },
            "Notification.IntervalInMinutes",
            "between 5 and 10000",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "TaskOwner"}],
                "IntervalInMinutes": 10001,
            },
            "Notification.IntervalInMinutes",
            "10001",
        ),
        (
            on("Error"),
            {"Channels": ["Mail"], "Receivers": [{"ReceiverType": "TaskOwner"}], "Maximum": 0},
            "Notification.Maximum",
            "between 1 and 10000",
        ),
        (
            on("Error"),
            {"Channels": ["Mail"], "Receivers": [{"ReceiverType": "TaskOwner"}], "Maximum": 10001},
            "Notification.Maximum",
            "10001",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "TaskOwner"}],
                "SilenceStartTime": "24:00",
                "SilenceEndTime": "06:00",
            },
            "Notification.SilenceStartTime",
            "HH:mm",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "TaskOwner"}],
                "SilenceStartTime": "22:00",
                "SilenceEndTime": "6:60",
            },
            "Notification.SilenceEndTime",
            "HH:mm",
        ),
        (
            on("Error"),
            {
                "Channels": ["Mail"],
                "Receivers": [{"ReceiverType": "TaskOwner"}],
                "SilenceStartTime": "22:00",
            },
            "Notification.SilenceEndTime",
            "missing",
        ),
        (
            {"Type": "Error", "Target": {"Type": "Task", "Ids": [10**15]}},
            None,
            "TriggerCondition.Target.Ids",
            "does not exist",
        ),
        (
            {"Type": "Error", "Target": {"Type": "Project", "Ids": [10**15]}},
            None,
            "TriggerCondition.Target.Ids",
            "does not exist",
        ),
    ]


def test_every_bad_value_is_refused_naming_its_field(live: LiveServer) -> None:
    root = live.sdk()
    pid = project(live.store).id
    (t1,) = deployed_tasks(live, pid, 1)
    before = [r.id for r in listed(root).alert_rules]
    for trigger, notification, name, words in _bad_cases(t1, pid):
        note = (
            notice()
            if notification is None
            else M.CreateAlertRuleRequestNotification().from_map(notification)
        )
        sent = M.CreateAlertRuleRequestTriggerCondition().from_map(trigger)
        error = sdk_error(lambda t=sent, n=note: create(root, t, n))
        assert_sdk_error(
            error, 400, "InvalidParameter" if "missing" not in words else "MissingParameter", name
        )
        assert words in error.data["Message"], (name, error.data["Message"])
    # Name: required and bounded; Notification and TriggerCondition required on create.
    for fields, code, name in (
        ({"name": ""}, "MissingParameter", "Name"),
        ({"name": "x" * 129}, "InvalidParameter", "Name"),
        ({"notification": None}, "MissingParameter", "Notification"),
        ({"trigger_condition": None}, "MissingParameter", "TriggerCondition"),
        ({"owner": "no-such-user"}, "InvalidParameter", "Owner"),
    ):
        request = M.CreateAlertRuleRequest(
            name="n", enabled=True, trigger_condition=condition([t1]), notification=notice()
        )
        for key, value in fields.items():
            setattr(request, key, value)
        error = sdk_error(lambda r=request: root.create_alert_rule(r))
        assert_sdk_error(error, 400, code, name)
    assert [r.id for r in listed(root).alert_rules] == before  # nothing was made

    # Every bound, inside: accepted.
    good = [
        condition([t1], "Timeout", Timeout={"TimeoutInMinutes": 1}),
        condition([t1], "Timeout", Timeout={"TimeoutInMinutes": 21600}),
        condition([t1], "UnFinished", UnFinished={"UnFinishedTime": "0:00"}),
        condition([t1], "UnFinished", UnFinished={"UnFinishedTime": "47:59"}),
        condition(
            [t1],
            "CycleUnfinished",
            CycleUnfinished={
                "CycleAndTime": [{"CycleId": 1, "Time": "00:00"}, {"CycleId": 288, "Time": "47:59"}]
            },
        ),
        condition([pid], "InstanceErrorCount", "Project", InstanceErrorCount={"Count": 1}),
        condition([pid], "InstanceErrorCount", "Project", InstanceErrorCount={"Count": 10000}),
        condition(
            [pid], "InstanceErrorPercentage", "Project", InstanceErrorPercentage={"Percentage": 1}
        ),
        condition(
            [pid], "InstanceErrorPercentage", "Project", InstanceErrorPercentage={"Percentage": 100}
        ),
        condition(
            ["default", "gpu"],
            "ResourceGroupWaitCount",
            "ResourceGroup",
            InstanceErrorCount={"Count": 10},
        ),
        condition(
            ["default"],
            "ResourceGroupPercentage",
            "ResourceGroup",
            InstanceErrorPercentage={"Percentage": 80},
        ),
        condition([t1], "Error", Error={"AutoRerunAlertEnabled": True}),
    ]
    for trigger in good:
        create(root, trigger)
    for fields in (
        {
            "IntervalInMinutes": 5,
            "Maximum": 1,
            "SilenceStartTime": "00:00",
            "SilenceEndTime": "23:59",
        },
        {
            "IntervalInMinutes": 10000,
            "Maximum": 10000,
            "SilenceStartTime": "22:00:00",
            "SilenceEndTime": "06:00:59",
        },
    ):
        rule_id = create(root, condition([t1]), notice(**fields))
        n = get(root, rule_id).notification
        assert (n.interval_in_minutes, n.maximum) == (
            fields["IntervalInMinutes"],
            fields["Maximum"],
        )
    groups = get(root, create(root, good[9])).trigger_condition
    assert groups.target.ids == ["default", "gpu"]
    assert groups.extension.instance_error_count.count == 10


def test_authorisation_follows_the_workspaces_a_rule_watches(live: LiveServer) -> None:
    root = live.sdk()
    pa, pb = project(live.store).id, project(live.store).id
    (ta,) = deployed_tasks(live, pa, 1)
    (tb,) = deployed_tasks(live, pb, 1)
    ops, ops_id = user_client(live, "auth-ops", "WorkspaceOperatorAccess")
    guest, guest_id = user_client(live, "auth-guest", "WorkspaceOperatorAccess")
    reader, reader_id = user_client(live, "auth-reader", "ReadOnlyAccess")
    member(live, pa, ops_id, "role_project_pe")
    member(live, pa, guest_id, "role_project_guest")
    member(live, pa, reader_id, "role_project_admin")
    in_b = create(root, condition([tb]), name="b's rule")
    in_both = create(root, condition([pa, pb], "Error", "Project"), name="both")
    on_groups = create(
        root,
        condition(
            ["default"], "ResourceGroupWaitCount", "ResourceGroup", InstanceErrorCount={"Count": 3}
        ),
    )

    # An O&M engineer of workspace a manages rules on a's tasks (and owns them by default).
    mine = create(ops, condition([ta]), name="ops rule", owner=None)
    assert get(ops, mine).owner == str(ops_id)
    ops.update_alert_rule(M.UpdateAlertRuleRequest(id=mine, name="renamed"))
    assert [r.id for r in listed(ops).alert_rules] == [mine]  # not b's, not both, not groups
    assert [r.id for r in listed(guest).alert_rules] == [mine]

    def denied(call: Callable[[], Any], *words: str) -> None:
        error = sdk_error(call)
        assert_sdk_error(error, 403, "Forbidden.RAM")
        for word in words:
            assert word in error.data["Message"], error.data["Message"]

    # A read-only role (Visitor) reads but does not manage; a read-only policy neither.
    get(guest, mine)
    denied(lambda: create(guest, condition([ta])), "do not permit monitor actions")
    denied(lambda: guest.delete_alert_rule(M.DeleteAlertRuleRequest(id=mine)), "monitor")
    denied(lambda: create(reader, condition([ta])), "policies", "CreateAlertRule")
    # Another workspace's rules, tasks and ids that do not exist look alike to an outsider.
    denied(lambda: get(ops, in_b), f"alert rule {in_b} does not exist, or is in a workspace")
    denied(lambda: get(ops, 10**12), f"alert rule {10**12} does not exist, or is in a workspace")
    denied(lambda: ops.delete_alert_rule(M.DeleteAlertRuleRequest(id=in_both)), "alert rule")
    denied(lambda: create(ops, condition([ta, tb])), f"task {tb} does not exist")
    denied(
        lambda: ops.update_alert_rule(
            M.UpdateAlertRuleRequest(
                id=mine,
                trigger_condition=M.UpdateAlertRuleRequestTriggerCondition().from_map(
                    {"Target": {"Type": "Project", "Ids": [pb]}}
                ),
            )
        ),
        f"workspace {pb}",
    )
    # Resource groups are the tenant's: only its administrators manage and see their rules.
    denied(
        lambda: create(
            ops,
            condition(
                ["default"],
                "ResourceGroupPercentage",
                "ResourceGroup",
                InstanceErrorPercentage={"Percentage": 90},
            ),
        ),
        "tenant administrators",
    )
    denied(lambda: get(ops, on_groups), "tenant administrators")
    assert get(ops, mine).name == "renamed"  # nothing the refusals touched changed
    assert {in_b, in_both, on_groups, mine} <= {r.id for r in listed(root).alert_rules}
    ops.delete_alert_rule(M.DeleteAlertRuleRequest(id=mine))
    with live.store.read() as tx:
        entries = [
            (e.action, e.result, e.user)
            for e in tx.audit.entries(limit=200)
            if e.action.endswith("AlertRule") and e.user in ("auth-ops", "auth-guest")
        ]
    assert ("CreateAlertRule", "OK", "auth-ops") in entries
    assert ("UpdateAlertRule", "OK", "auth-ops") in entries
    assert ("DeleteAlertRule", "OK", "auth-ops") in entries
    assert ("CreateAlertRule", "Forbidden.RAM", "auth-guest") in entries
