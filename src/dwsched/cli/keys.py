"""`dwsched keys`: AccessKeys that sign API requests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table

from dwsched import config
from dwsched.cli.options import db_option, open_store, option
from dwsched.clock import SystemClock
from dwsched.domain.models import KeyStatus
from dwsched.runtime.keys import (
    create_key,
    default_key_file,
    rotate_server_key as rotate,
    unlock,
)
from dwsched.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def secret_key_file_option(f: F) -> F:
    """`--secret-key-file`: where the server key that seals AccessKeySecrets is kept."""
    return option(
        "--secret-key-file",
        envvar=config.SECRET_KEY_FILE_ENV,
        default=None,
        show_envvar=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="File of the server key that seals AccessKeySecrets at rest: created with mode "
        "0600 on first use, refused when group or others may read it. Default: "
        "DATABASE_FILE.key beside a SQLite database, else "
        f"{config.DEFAULT_SECRET_KEY_DIR}/secret.key. {config.SECRET_KEY_ENV}, when set, "
        "holds the key itself and wins (it has no flag: a flag would show in ps).",
    )(f)


def _secret_key() -> str | None:
    return os.environ.get(config.SECRET_KEY_ENV) or None


def key_file(db_url: str, secret_key_file: Path | None) -> Path:
    """The server key's file for this database and option."""
    return secret_key_file or default_key_file(
        db_url, Path(config.DEFAULT_SECRET_KEY_DIR).expanduser()
    )


def unlock_store(store: Store, db_url: str, secret_key_file: Path | None, quiet: bool) -> Store:
    """`store` with the server key (the secrets still in plaintext sealed with it), as every
    command that writes or checks AccessKeySecrets needs; say what was done on stderr."""
    path = key_file(db_url, secret_key_file)
    done = unlock(store, _secret_key(), path)
    if quiet:
        return done.store
    if done.created:
        click.echo(
            f"Created the server key file {path} (mode 0600): the AccessKeySecrets are "
            "sealed with it. Keep it, apart from backups of the database.",
            err=True,
        )
    if done.sealed:
        click.echo(
            f"Sealed {done.sealed} AccessKeySecret(s) stored in plaintext with server key "
            f"{done.box.key_id}.",
            err=True,
        )
    return done.store


@click.group()
def keys() -> None:
    """Create, list, disable and delete AccessKeys."""


@keys.command("create")
@db_option()
@secret_key_file_option
@option("--name", default="", help="A label for the key.")
@option(
    "--user",
    "user_name",
    default=None,
    help="The user who owns the key: its requests are allowed by that user's policies "
    "and workspace roles. Without it, the key is the tenant's own key, which may do "
    "everything (docs/access.md).",
)
@option(
    "--json",
    "as_json",
    envvar="DWSCHED_KEYS_CREATE_JSON",
    is_flag=True,
    help="Print one JSON line.",
)
def create(
    db_url: str, secret_key_file: Path | None, name: str, user_name: str | None, as_json: bool
) -> None:
    """Create a key; its secret is shown this once (and stored sealed)."""
    with open_store(db_url) as opened:
        if user_name is not None:
            with opened.read() as tx:
                tx.users.get(user_name)  # refused before anything is made when there is none
        store = unlock_store(opened, db_url, secret_key_file, quiet=as_json)
        key = create_key(store, name, SystemClock().now_ms())
        if user_name is not None:
            try:
                with store.write() as tx:
                    tx.users.set_key_user(key.id, user_name)
            except BaseException:
                with store.write() as tx:
                    tx.keys.delete(key.id)  # never leave it a tenant key by accident
                raise
    if as_json:
        click.echo(json.dumps({"AccessKeyId": key.id, "AccessKeySecret": key.secret}))
    else:
        click.echo(f"AccessKeyId:     {key.id}\nAccessKeySecret: {key.secret}")
        click.echo("Keep the secret now: it is not shown again.", err=True)


@keys.command("list")
@db_option()
def list_(db_url: str) -> None:
    """List keys (never their secrets)."""
    with open_store(db_url, existing=True) as store, store.read() as tx:
        found = tx.keys.all()
        owners = tx.users.key_users()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("AccessKeyId", no_wrap=True)
    for heading in ("Name", "User", "Status", "Created (UTC)"):
        table.add_column(heading, overflow="fold")
    for key in found:
        created = datetime.fromtimestamp(key.create_time / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        owner = owners.get(key.id, "-")  # a tenant key (docs/access.md)
        table.add_row(key.id, key.name, owner, key.status.value, created)
    Console().print(table)


@keys.command("disable")
@db_option()
@click.argument("access_key_id")
def disable(db_url: str, access_key_id: str) -> None:
    """Disable a key: its requests get InvalidAccessKeyId.Inactive."""
    with open_store(db_url, existing=True) as store, store.write() as tx:
        tx.keys.set_status(access_key_id, KeyStatus.DISABLED)
    click.echo(f"disabled {access_key_id}")


@keys.command("enable")
@db_option()
@click.argument("access_key_id")
def enable(db_url: str, access_key_id: str) -> None:
    """Enable a disabled key again."""
    with open_store(db_url, existing=True) as store, store.write() as tx:
        tx.keys.set_status(access_key_id, KeyStatus.ENABLED)
    click.echo(f"enabled {access_key_id}")


@keys.command("delete")
@db_option()
@click.argument("access_key_id")
def delete(db_url: str, access_key_id: str) -> None:
    """Delete a key for good."""
    with open_store(db_url, existing=True) as store, store.write() as tx:
        tx.keys.delete(access_key_id)
    click.echo(f"deleted {access_key_id}")


@keys.command("rotate-server-key")
@db_option()
@secret_key_file_option
@option(
    "--new-key-file",
    envvar="DWSCHED_NEW_SECRET_KEY_FILE",
    default=None,
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Take the new server key from this file (mode 0600) instead of generating one; "
    f"required when {config.SECRET_KEY_ENV} holds the current key.",
)
def rotate_server_key(db_url: str, secret_key_file: Path | None, new_key_file: Path | None) -> None:
    """Seal every AccessKeySecret with a new server key, in one transaction.

    \b
    1. Stop every `dwsched serve` and `dwsched demo` on this database: a
       running server keeps the key it started with and could no longer
       open the secrets.
    2. Run this command with the servers' --db and server key settings. It
       generates the new key (or reads --new-key-file), seals every secret
       with it, then writes it to the key file (mode 0600, replaced
       atomically) and keeps the old key in KEYFILE.old.
       With DWSCHED_SECRET_KEY there is no key file: pass --new-key-file,
       then set DWSCHED_SECRET_KEY to that file's key everywhere.
    3. Start the servers again; delete KEYFILE.old once all is well.
    """
    with open_store(db_url, existing=True) as store:
        done = rotate(store, _secret_key(), key_file(db_url, secret_key_file), new_key_file)
    click.echo(
        f"Sealed {done.resealed} AccessKeySecret(s) with server key {done.new_key_id} "
        f"(was {done.old_key_id})."
    )
    if done.key_file is not None:
        click.echo(f"{done.key_file} holds the new key; the old one is in {done.backup}.")
    else:
        click.echo(
            f"Set {config.SECRET_KEY_ENV} to the key in {new_key_file} for every dwsched "
            "process on this database, then start the servers again."
        )
