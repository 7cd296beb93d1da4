"""`dwsched users`, `dwsched groups`, `dwsched policies`: who may do what (docs/access.md).

They work on the database directly, as `keys` and `projects` do: whoever can run them owns
the deployment.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.table import Table

from dwsched.cli.keys import secret_key_file_option, unlock_store
from dwsched.cli.options import db_option, open_store, option
from dwsched.cli.terminal import cell, json_text, visible
from dwsched.clock import SystemClock
from dwsched.domain import alerts, policies as policy_rules
from dwsched.domain.errors import InvalidArgument
from dwsched.domain.users import PrincipalType, check_email
from dwsched.web import passwords

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.@-]{0,63}")
_POLICY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def _name(value: str, what: str, pattern: re.Pattern[str] = _NAME) -> str:
    if not pattern.fullmatch(value):
        raise InvalidArgument(
            what,
            f"{what} {value!r} must start with a letter and hold letters, digits and "
            f"{'_ . @ -' if pattern is _NAME else '-'} only (at most "
            f"{64 if pattern is _NAME else 128} characters).",
        )
    return value


@click.group()
def users() -> None:
    """Users: they own AccessKeys (dwsched keys create --user NAME)."""


@users.command("create")
@db_option()
@click.argument("name")
@option("--display-name", default="", help="Shown name.")
def create_user(db_url: str, name: str, display_name: str) -> None:
    """Create a user (no policy: it may do nothing until one is attached)."""
    _name(name, "NAME")
    with open_store(db_url) as store, store.write() as tx:
        user = tx.users.create(name, display_name or name, SystemClock().now_ms())
    click.echo(f"created user {user.name} (UserId {user.id})")


@users.command("list")
@db_option()
def list_users(db_url: str) -> None:
    """List users with their ids and policies (`dwsched users contact NAME` shows a user's
    contact fields)."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        found = tx.users.all()
        attached = tx.policies.attachments()
    table = Table("UserId")
    widest = max((len(u.name) for u in found), default=4)
    table.add_column("Name", no_wrap=True, min_width=min(widest, 64))
    table.add_column("Display name", overflow="fold")
    table.add_column("Policies", overflow="fold")
    for u in found:
        names = [p for p, kind, who in attached if kind == PrincipalType.USER and who == u.name]
        table.add_row(str(u.id), u.name, u.display_name, ", ".join(names))
    Console().print(table)


@users.command("contact")
@db_option()
@secret_key_file_option
@click.argument("name")
@option("--email", help="E-mail address alerts for NAME go to (Mail channel); '' clears it.")
@option(
    "--webhook",
    help="Webhook URL (http/https) alerts for NAME are posted to; stored sealed with the "
    "server key, shown masked; '' clears it.",
)
def contact(
    db_url: str,
    secret_key_file: Path | None,
    name: str,
    email: str | None,
    webhook: str | None,
) -> None:
    """Set or show NAME's contact fields: where alerts naming NAME (AliUid receivers) or
    about NAME's tasks (TaskOwner) go. Without options, show them (the webhook masked)."""
    if email:
        check_email(email)
    if webhook:
        alerts.check_url(webhook, "--webhook")
    with open_store(db_url, existing=True) as opened:
        store = unlock_store(opened, db_url, secret_key_file, quiet=True)
        with store.write() as tx:
            user_id = tx.users.get(name).id
            if email is not None:
                tx.users.set_email(name, email or None)
            if webhook is not None:
                tx.users.set_webhook(name, webhook or None)
            found = tx.users.contacts([user_id])[0]
    shown = alerts.mask_url(found.webhook) if found.webhook else "-"
    click.echo(f"{visible(name)}: email {visible(found.email or '-')}, webhook {visible(shown)}")


@users.command("passwd")
@db_option()
@click.argument("name")
@option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
def set_password(db_url: str, name: str, password_stdin: bool) -> None:
    """Set the password NAME signs in to the web console with (/console/). It is stored as
    an Argon2id hash; the user's open console sessions end."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"New password for {name}", hide_input=True, confirmation_prompt=True
        )
    hashed = passwords.hash_password(password)  # refuses a short one before any change
    with open_store(db_url, existing=True) as store, store.write() as tx:
        tx.users.set_password(name, hashed)
    click.echo(f"password of {name} set; sign in at /console/")


@users.command("signout")
@db_option()
@click.argument("name")
def sign_out(db_url: str, name: str) -> None:
    """End every web console session of NAME (a lost laptop, a shared screen): the next
    request of each is refused and NAME signs in again."""
    with open_store(db_url, existing=True) as store, store.write() as tx:
        count = tx.users.end_sessions(name)
    click.echo(f"ended {count} console session(s) of {name}")


@users.command("delete")
@db_option()
@click.argument("name")
def delete_user(db_url: str, name: str) -> None:
    """Delete a user (its AccessKeys first), its memberships and attachments."""
    with open_store(db_url, existing=True) as store, store.write() as tx:
        tx.users.delete(name)
    click.echo(f"deleted user {name}")


@click.group()
def groups() -> None:
    """Groups of users: policies attached to a group apply to its users."""


@groups.command("create")
@db_option()
@click.argument("name")
def create_group(db_url: str, name: str) -> None:
    """Create a group."""
    _name(name, "NAME")
    with open_store(db_url) as store, store.write() as tx:
        tx.groups.create(name, SystemClock().now_ms())
    click.echo(f"created group {name}")


@groups.command("add")
@db_option()
@click.argument("group")
@click.argument("user")
def add_user(db_url: str, group: str, user: str) -> None:
    """Add USER to GROUP."""
    with open_store(db_url, existing=True) as store, store.write() as tx:
        tx.groups.add(group, user)
    click.echo(f"{user} is in {group}")


@groups.command("list")
@db_option()
def list_groups(db_url: str) -> None:
    """List groups and their users."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        found = tx.groups.all()
    table = Table("Group", "Users")
    for name, members in found:
        table.add_row(name, ", ".join(members))
    Console().print(table)


@click.group()
def policies() -> None:
    """RAM-style policies: documents of Allow/Deny statements on dataworks:<Action> and
    acs:dataworks:*:*:workspace/<ProjectId> (docs/access.md)."""


@policies.command("create")
@db_option()
@click.argument("name")
@option(
    "--document",
    "document_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="The policy document (JSON file), or - for standard input.",
)
@option("--description", default="", help="Free text.")
def create_policy(db_url: str, name: str, document_file: TextIO, description: str) -> None:
    """Create a custom policy from a RAM policy document."""
    _name(name, "NAME", _POLICY_NAME)
    if policy_rules.is_builtin(name):
        raise InvalidArgument("NAME", f"{name!r} is a built-in policy's name.")
    text = document_file.read()
    policy_rules.parse_policy(text, "--document")
    with open_store(db_url) as store, store.write() as tx:
        tx.policies.create(name, text, description, SystemClock().now_ms())
    click.echo(f"created policy {name}")


@policies.command("list")
@db_option()
def list_policies(db_url: str) -> None:
    """List built-in and custom policies, and where they are attached."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        custom = tx.policies.custom()
        attached = tx.policies.attachments()
    table = Table("Policy", "Type", "Attached to", "Description")
    rows = [
        (n, "System", policy_rules.BUILTIN_DESCRIPTIONS.get(n, "")) for n in policy_rules.BUILTIN
    ]
    rows += [(n, "Custom", d) for n, d, _ in custom]
    for name, kind, description in rows:
        where = ", ".join(f"{t.lower()}:{who}" for p, t, who in attached if p == name)
        table.add_row(name, kind, where, description)
    Console().print(table)


@policies.command("show")
@db_option()
@click.argument("name")
def show_policy(db_url: str, name: str) -> None:
    """Print a policy's document."""
    if policy_rules.is_builtin(name):
        click.echo(policy_rules.BUILTIN_DOCUMENTS[name])
        return
    with open_store(db_url, existing=True) as store, store.read() as tx:
        found = {n: doc for n, _, doc in tx.policies.custom()}
    if name not in found:
        raise InvalidArgument("NAME", f"The policy {name!r} does not exist.")
    click.echo(found[name])


@policies.command("delete")
@db_option()
@click.argument("name")
def delete_policy(db_url: str, name: str) -> None:
    """Delete a custom policy (detach it first)."""
    if policy_rules.is_builtin(name):
        raise InvalidArgument("NAME", f"{name!r} is a built-in policy: it cannot be deleted.")
    with open_store(db_url, existing=True) as store, store.write() as tx:
        tx.policies.delete(name)
    click.echo(f"deleted policy {name}")


def _attach(db_url: str, name: str, user: str | None, group: str | None, attach: bool) -> None:
    if (user is None) == (group is None):
        raise InvalidArgument("--user", "Give exactly one of --user and --group.")
    kind, who = (PrincipalType.USER, user) if user is not None else (PrincipalType.GROUP, group)
    assert who is not None
    with open_store(db_url, existing=True) as store, store.write() as tx:
        if not policy_rules.is_builtin(name) and not tx.policies.exists(name):
            raise InvalidArgument("NAME", f"The policy {name!r} does not exist.")
        tx.policies.attach(name, kind, who, attach)
    click.echo(f"{'attached' if attach else 'detached'} {name} {'to' if attach else 'from'} {who}")


@policies.command("attach")
@db_option()
@click.argument("name")
@option("--user", default=None, help="The user to attach it to.")
@option("--group", default=None, help="The group to attach it to.")
def attach_policy(db_url: str, name: str, user: str | None, group: str | None) -> None:
    """Attach a policy to a user or a group."""
    _attach(db_url, name, user, group, attach=True)


@policies.command("detach")
@db_option()
@click.argument("name")
@option("--user", default=None, help="The user to detach it from.")
@option("--group", default=None, help="The group to detach it from.")
def detach_policy(db_url: str, name: str, user: str | None, group: str | None) -> None:
    """Detach a policy from a user or a group."""
    _attach(db_url, name, user, group, attach=False)


@click.command()
@db_option()
@option("--since", default=None, help="Only entries from this day on (YYYY-MM-DD, UTC).")
@option("--user", "user_name", default=None, help="Only this user's (or AccessKeyId's) entries.")
@option("--action", "actions", multiple=True, help="Only these actions (repeatable).")
@option("--project", "project_id", type=int, default=None, help="Only this workspace's entries.")
@option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="At most this many, newest first.",
)
@option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit(
    db_url: str,
    since: str | None,
    user_name: str | None,
    actions: tuple[str, ...],
    project_id: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit log: every mutating action, who made it, with which key, on what, and
    how it ended (newest first)."""
    since_ms = None
    if since is not None:
        try:
            day = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidArgument(
                "--since", f"--since must be YYYY-MM-DD, got {since!r}."
            ) from None
        since_ms = int(day.timestamp() * 1000)
    with open_store(db_url, existing=True) as store, store.read() as tx:
        found = tx.audit.entries(since_ms, user_name, list(actions) or None, project_id, limit)
    if as_json:
        for e in found:
            click.echo(
                json_text(
                    {
                        "Time": e.create_time,
                        "User": e.user,
                        "AccessKeyId": e.access_key_id,
                        "Action": e.action,
                        "ProjectId": e.project_id,
                        "Targets": json.loads(e.targets),
                        "Parameters": json.loads(e.parameters),
                        "Result": e.result,
                        "RequestId": e.request_id,
                        "Source": e.source,
                    },
                )
            )
        return
    table = Table("Time (UTC)", "User", "Action", "Targets", "Result", "Source", "RequestId")
    for e in found:
        when = datetime.fromtimestamp(e.create_time / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        style = "green" if e.result == "OK" else "red"
        # The user name of a failed console sign-in is whatever was typed: shown escaped.
        table.add_row(
            when,
            cell(e.user),
            cell(e.action),
            cell(", ".join(json.loads(e.targets))),
            cell(e.result, style),
            cell(e.source),
            cell(e.request_id),
        )
    Console().print(table)
