"""`dwsched alerts`: the alert rules on a database, the alerts sent (and not sent, and
why), and a test of a rule's receivers (docs/alerts.md).

They work on the database directly, as `workers` and `users` do; `test` opens the rule's
webhook URLs with the server key and sends as the scheduler would (the same options).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dwsched import config
from dwsched.cli.alerting import alert_options, served_alerts
from dwsched.cli.keys import secret_key_file_option, unlock_store
from dwsched.cli.options import db_option, open_store, option
from dwsched.cli.terminal import cell
from dwsched.clock import SystemClock
from dwsched.domain.alerts import RuleQuery
from dwsched.domain.errors import DwschedError
from dwsched.engine.alerts import AlertSettings, send_test


@click.group()
def alerts() -> None:
    """Alert rules, the alerts they raised, and a test of a rule's receivers."""


def _when(ms: int) -> str:
    """The date over the time: the column stays narrow."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d\n%H:%M:%SZ")


@alerts.command("rules")
@db_option()
@option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def rules(db_url: str, as_json: bool) -> None:
    """List the alert rules: what each watches, when it fires, where it goes."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        found = tx.alerts.find(RuleQuery())
    rows: list[dict[str, Any]] = [
        {
            "Id": r.id,
            "Name": r.name,
            "Enabled": r.enabled,
            "Type": r.trigger.type.value,
            "Target": f"{r.trigger.target.type.value} {','.join(map(str, r.trigger.target.ids))}",
            "Channels": [c.value for c in r.notification.channels],
        }
        for r, _ in found
    ]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo("No alert rules (CreateAlertRule makes them).")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for heading in ("Id", "Name", "Enabled", "Type", "Target", "Channels"):
        table.add_column(heading, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["Id"]),
            cell(str(row["Name"])),
            "yes" if row["Enabled"] else "no",
            str(row["Type"]),
            cell(str(row["Target"])),
            ",".join(row["Channels"]),
        )
    Console().print(table)


@alerts.command("history")
@db_option()
@option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def history(db_url: str, limit: int, as_json: bool) -> None:
    """The newest alerts: their rule and trigger, whether they were sent (or why not), and
    each delivery's outcome and tries."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        found = tx.outbox.history(None, limit)
    for event in found:  # the rule's name and what happened, from the notice sent
        notice = json.loads(event.pop("notice") or "{}")
        event["rule_name"] = notice.get("facts", {}).get("rule_name")
        event["title"] = notice.get("title")
    if as_json:
        for event in found:
            click.echo(json.dumps(event, default=str))
        return
    if not found:
        click.echo("No alerts yet.")
        return
    # Narrow edges and gaps: a delivery's address fits whole at 80 columns.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    for heading in ("Id", "At (UTC)", "Rule", "Trigger", "State", "Deliveries"):
        table.add_column(heading, overflow="fold")
    for event in found:
        rule = cell(event["rule_name"] or "-")
        if event["rule_id"] is not None:  # else a run's own alert (CreateWorkflowInstances)
            rule.append(f" ({event['rule_id']})")
        table.add_row(
            str(event["id"]),
            _when(int(event["created_at"])),
            rule,
            str(event["trigger"]),
            str(event["state"]),
            Text("\n").join(_delivery(d) for d in event["deliveries"]) or "-",
        )
    Console().print(table)


def _delivery(d: dict[str, Any]) -> Text:
    """A delivery on its lines: its channel, outcome and tries; where it went; why it
    failed."""
    tries = len(d["attempts_made"])
    after = ", " if d["state"] == "pending" else " after "  # pending: tried again later
    lines = [
        cell(f"{d['channel']}: {d['state']}{after}{tries} {'try' if tries == 1 else 'tries'}"),
        cell(d["receiver"]),
    ]
    if d["detail"] and d["state"] != "sent":
        lines.append(cell(d["detail"]))
    return Text("\n").join(lines)


@alerts.command("test")
@click.argument("rule_id", type=int, metavar="RULE_ID")
@db_option()
@secret_key_file_option
@alert_options
def test(db_url: str, rule_id: int, secret_key_file: Path | None, alerts: AlertSettings) -> None:
    """Send a sample notice through each receiver of the alert rule RULE_ID (an alert
    rule's id, as `dwsched alerts rules` lists them), with the scheduler's options; print
    each outcome. Nothing is recorded."""
    store = unlock_store(open_store(db_url, existing=True), db_url, secret_key_file, quiet=True)
    settings = served_alerts(alerts, config.DEFAULT_HOST, config.DEFAULT_PORT)
    try:
        with store.read() as tx:
            rule = tx.alerts.get(rule_id)
        sent = send_test(store, rule_id, rule.name, settings, SystemClock().now_ms())
    except DwschedError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    if not sent:
        raise click.ClickException(
            f"The alert rule {rule_id} reaches no receiver now (a user without an e-mail "
            "address or webhook, or Mail without --smtp)."
        )
    failed = 0
    for channel, receiver, outcome in sent:
        mark = "✓" if outcome.delivered else "✗"
        click.echo(f"{mark} {channel} {receiver}: {outcome.detail}")
        failed += not outcome.delivered
    if failed:
        raise click.exceptions.Exit(1)
