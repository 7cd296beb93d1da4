"""Access control's storage: users, groups, custom policies and their attachments, workspace
members and their roles. One repository per noun (`Tx.users`, `Tx.groups`, `Tx.policies`,
`Tx.members`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from dwsched.domain.errors import Conflict, MemberNotFound, NotFound, UserNotFound
from dwsched.domain.users import Contact, Principal, PrincipalType, User, account_id
from dwsched.store.projects import project_by_id
from dwsched.store.schema import (
    access_keys,
    console_sessions,
    group_users,
    member_roles,
    policies,
    policy_attachments,
    project_members,
    user_groups,
    users,
)
from dwsched.store.secrets import SecretBox, resealed, reveal


def _user(r: Any) -> User:
    return User(int(r.id), r.name, r.display_name, int(r.create_time))


def user_by_name(conn: sa.Connection, name: str) -> User:
    row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        raise UserNotFound(name)
    return _user(row)


def user_by_id(conn: sa.Connection, user_id: int) -> User | None:
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    return None if row is None else _user(row)


def group_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(sa.select(user_groups.c.id).where(user_groups.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"The group {name!r} does not exist.")
    return int(found)


_WEBHOOK = "user-webhook"  # the label sealed user webhooks are kept under in this process


class Users:
    """Users, their passwords, keys, console sessions and contact fields (`Tx.users`); a
    user's webhook URL is sealed with the store's server key."""

    def __init__(self, conn: sa.Connection, secrets: SecretBox | None = None) -> None:
        self.conn = conn
        self.secrets = secrets

    def set_email(self, name: str, email: str | None) -> None:
        """Set (None: clear) the user's e-mail address, checked by the caller."""
        user = user_by_name(self.conn, name)
        self.conn.execute(sa.update(users).where(users.c.id == user.id).values(email=email))

    def set_webhook(self, name: str, url: str | None) -> None:
        """Set (None: clear) the user's webhook URL, checked by the caller; stored sealed."""
        user = user_by_name(self.conn, name)
        box = self.secrets
        sealed = box.seal(_WEBHOOK, url) if box is not None and url is not None else url
        self.conn.execute(sa.update(users).where(users.c.id == user.id).values(webhook=sealed))

    def reseal_webhooks(self, new: SecretBox) -> int:
        """Seal every user's webhook URL with `new` (a rotation of the server key, in its
        transaction); how many changed."""
        old = self.secrets
        if old is None:
            raise RuntimeError("no current server key to open webhook URLs with")
        rows = self.conn.execute(
            sa.select(users.c.id, users.c.webhook).where(users.c.webhook.is_not(None))
        ).all()
        done = 0
        for user_id, stored in rows:
            sealed = resealed(old, new, _WEBHOOK, stored)
            if sealed != stored:
                self.conn.execute(
                    sa.update(users).where(users.c.id == user_id).values(webhook=sealed)
                )
                done += 1
        return done

    def contacts(self, user_ids: Iterable[int] | None = None) -> list[Contact]:
        """The contact fields of these users (all users: None), by id; webhooks opened."""
        q = sa.select(users.c.id, users.c.name, users.c.email, users.c.webhook).order_by(users.c.id)
        if user_ids is not None:
            q = q.where(users.c.id.in_(list(user_ids)))
        return [
            Contact(
                int(r.id),
                r.name,
                r.email,
                None if r.webhook is None else reveal(self.secrets, _WEBHOOK, r.webhook),
            )
            for r in self.conn.execute(q)
        ]

    def create(self, name: str, display_name: str, now_ms: int) -> User:
        conn = self.conn
        if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None:
            raise Conflict(f"The user {name!r} exists already.")
        conn.execute(
            sa.insert(users).values(name=name, display_name=display_name, create_time=now_ms)
        )
        return user_by_name(conn, name)

    def get(self, name: str) -> User:
        """UserNotFound when no user has that name."""
        return user_by_name(self.conn, name)

    def by_id(self, user_id: int) -> User | None:
        return user_by_id(self.conn, user_id)

    def all(self) -> list[User]:
        return [_user(r) for r in self.conn.execute(sa.select(users).order_by(users.c.id))]

    def delete(self, name: str) -> None:
        """Conflict while the user owns AccessKeys; its memberships and sessions go with it."""
        conn = self.conn
        user = user_by_name(conn, name)
        keys = sorted(
            str(k)
            for k in conn.execute(
                sa.select(access_keys.c.id).where(access_keys.c.user_id == user.id)
            ).scalars()
        )
        if keys:
            many = len(keys) > 1
            raise Conflict(
                f"The user {name!r} still owns the AccessKey{'s' if many else ''} "
                f"{', '.join(keys)}; delete {'them' if many else 'it'} first "
                "(dwsched keys delete ID)."
            )
        for table, column in (
            (group_users, group_users.c.user_id),
            (project_members, project_members.c.user_id),
            (member_roles, member_roles.c.user_id),
            (console_sessions, console_sessions.c.user_id),
        ):
            conn.execute(sa.delete(table).where(column == user.id))
        conn.execute(
            sa.delete(policy_attachments).where(
                policy_attachments.c.principal_type == PrincipalType.USER.value,
                policy_attachments.c.principal_id == user.id,
            )
        )
        conn.execute(sa.delete(users).where(users.c.id == user.id))

    def set_password(self, name: str, password_hash: str) -> None:
        """Set the user's password hash; the user's console sessions end."""
        user = user_by_name(self.conn, name)
        self.conn.execute(
            sa.update(users).where(users.c.id == user.id).values(password_hash=password_hash)
        )
        self._end_sessions_of(user.id)

    def end_sessions(self, name: str) -> int:
        """End every console session of the user, wherever it was opened; how many."""
        return self._end_sessions_of(user_by_name(self.conn, name).id)

    def _end_sessions_of(self, user_id: int) -> int:
        done = self.conn.execute(
            sa.delete(console_sessions).where(console_sessions.c.user_id == user_id)
        )
        return int(done.rowcount)

    def password_of(self, name: str) -> tuple[int, str] | None:
        """The user's id and password hash; None for an unknown user or one without one."""
        row = self.conn.execute(
            sa.select(users.c.id, users.c.password_hash).where(users.c.name == name)
        ).first()
        if row is None or not row.password_hash:
            return None
        return int(row.id), str(row.password_hash)

    def set_key_user(self, access_key_id: str, user: str) -> None:
        """Give the key to a user (its requests are then that user's)."""
        owner = user_by_name(self.conn, user)
        done = self.conn.execute(
            sa.update(access_keys).where(access_keys.c.id == access_key_id).values(user_id=owner.id)
        )
        if done.rowcount == 0:
            raise NotFound(f"The AccessKey {access_key_id!r} does not exist.")

    def key_users(self) -> dict[str, str]:
        """AccessKey id -> its user's name (keys without a user left out)."""
        rows = self.conn.execute(
            sa.select(access_keys.c.id, users.c.name).join(
                users, users.c.id == access_keys.c.user_id
            )
        )
        return {str(r.id): str(r.name) for r in rows}

    def account_named(self, text: str) -> str | None:
        """The account id (domain.users.account_id) that `text` named before owners were
        account ids: an AccessKeyId (its user's id, or the tenant's for a key without a
        user), else a user's name; None when it is neither."""
        key = self.conn.execute(
            sa.select(access_keys.c.user_id).where(access_keys.c.id == text)
        ).first()
        if key is not None:
            return account_id(None if key.user_id is None else int(key.user_id))
        found = self.conn.execute(sa.select(users.c.id).where(users.c.name == text)).scalar()
        return None if found is None else str(found)

    def principal_of_key(self, access_key_id: str) -> Principal | None:
        """The user owning the key and the policies that apply to it; None for a key
        without a user."""
        user_id = self.conn.execute(
            sa.select(access_keys.c.user_id).where(access_keys.c.id == access_key_id)
        ).scalar()
        if user_id is None:
            return None  # the tenant's own key
        return self.principal(int(user_id))

    def principal(self, user_id: int) -> Principal:
        """The user and the policies that apply to it (its own and its groups')."""
        conn = self.conn
        user = user_by_id(conn, user_id)
        if user is None:
            # The user is gone: its key or session may do nothing (never everything).
            return Principal(User(user_id, f"deleted-user-{user_id}", "", 0), (), ())
        group_ids = [
            int(g)
            for g in conn.execute(
                sa.select(group_users.c.group_id).where(group_users.c.user_id == user.id)
            ).scalars()
        ]
        c = policy_attachments.c
        mine = sa.and_(c.principal_type == PrincipalType.USER.value, c.principal_id == user.id)
        groups = sa.and_(
            c.principal_type == PrincipalType.GROUP.value, c.principal_id.in_(group_ids or [-1])
        )
        names = sorted(
            {
                str(n)
                for n in conn.execute(
                    sa.select(c.policy_name).where(sa.or_(mine, groups))
                ).scalars()
            }
        )
        documents = tuple(
            (r.name, r.document)
            for r in conn.execute(
                sa.select(policies.c.name, policies.c.document).where(policies.c.name.in_(names))
            )
        )
        return Principal(user, tuple(names), documents)


class Groups:
    """Groups of users (`Tx.groups`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def create(self, name: str, now_ms: int) -> int:
        conn = self.conn
        if conn.execute(sa.select(user_groups.c.id).where(user_groups.c.name == name)).first():
            raise Conflict(f"The group {name!r} exists already.")
        conn.execute(sa.insert(user_groups).values(name=name, create_time=now_ms))
        return group_id(conn, name)

    def add(self, group: str, user: str) -> None:
        """Put the user in the group (nothing when it is in it already)."""
        conn = self.conn
        gid, uid = group_id(conn, group), user_by_name(conn, user).id
        exists = conn.execute(
            sa.select(group_users.c.user_id).where(
                group_users.c.group_id == gid, group_users.c.user_id == uid
            )
        ).first()
        if exists is None:
            conn.execute(sa.insert(group_users).values(group_id=gid, user_id=uid))

    def all(self) -> list[tuple[str, list[str]]]:
        """(group name, its users' names) of every group."""
        rows = self.conn.execute(
            sa.select(user_groups.c.name, users.c.name.label("user"))
            .select_from(user_groups)
            .outerjoin(group_users, group_users.c.group_id == user_groups.c.id)
            .outerjoin(users, users.c.id == group_users.c.user_id)
            .order_by(user_groups.c.name, users.c.name)
        )
        found: dict[str, list[str]] = {}
        for r in rows:
            found.setdefault(r.name, [])
            if r.user is not None:
                found[r.name].append(r.user)
        return list(found.items())


class Policies:
    """Custom policies and the attachments of every policy (`Tx.policies`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def create(self, name: str, document: str, description: str, now_ms: int) -> None:
        conn = self.conn
        if conn.execute(sa.select(policies.c.name).where(policies.c.name == name)).first():
            raise Conflict(f"The policy {name!r} exists already.")
        conn.execute(
            sa.insert(policies).values(
                name=name, document=document, description=description, create_time=now_ms
            )
        )

    def custom(self) -> list[tuple[str, str, str]]:
        """(name, description, document) of every custom policy."""
        rows = self.conn.execute(sa.select(policies).order_by(policies.c.name))
        return [(r.name, r.description, r.document) for r in rows]

    def exists(self, name: str) -> bool:
        found = self.conn.execute(sa.select(policies.c.name).where(policies.c.name == name))
        return found.first() is not None

    def delete(self, name: str) -> None:
        """Conflict while the policy is attached."""
        attached = self.conn.execute(
            sa.select(sa.func.count()).where(policy_attachments.c.policy_name == name)
        ).scalar()
        if attached:
            times = "once" if attached == 1 else f"{attached} times"
            raise Conflict(
                f"The policy {name!r} is attached {times}; detach it first (dwsched policies "
                "list shows where)."
            )
        done = self.conn.execute(sa.delete(policies).where(policies.c.name == name))
        if done.rowcount == 0:
            raise NotFound(f"The policy {name!r} does not exist.")

    def attach(self, policy: str, principal_type: PrincipalType, name: str, attach: bool) -> None:
        """Attach the policy to the user or group `name` (`attach`), or detach it."""
        kind = PrincipalType(principal_type)
        principal = (
            user_by_name(self.conn, name).id
            if kind is PrincipalType.USER
            else group_id(self.conn, name)
        )
        c = policy_attachments.c
        where = (
            c.policy_name == policy,
            c.principal_type == kind.value,
            c.principal_id == principal,
        )
        if not attach:
            done = self.conn.execute(sa.delete(policy_attachments).where(*where))
            if done.rowcount == 0:
                raise NotFound(
                    f"The policy {policy!r} is not attached to that {kind.value.lower()}."
                )
            return
        if self.conn.execute(sa.select(c.policy_name).where(*where)).first() is None:
            self.conn.execute(
                sa.insert(policy_attachments).values(
                    policy_name=policy, principal_type=kind.value, principal_id=principal
                )
            )

    def attachments(self) -> list[tuple[str, str, str]]:
        """(policy, principal type, principal name) of every attachment."""
        c = policy_attachments.c
        rows = self.conn.execute(sa.select(c.policy_name, c.principal_type, c.principal_id))
        names = {
            (PrincipalType.USER.value, int(u.id)): u.name
            for u in self.conn.execute(sa.select(users))
        } | {
            (PrincipalType.GROUP.value, int(r.id)): r.name
            for r in self.conn.execute(sa.select(user_groups))
        }
        return sorted(
            (r.policy_name, r.principal_type, names.get((r.principal_type, r.principal_id), "?"))
            for r in rows
        )


class Members:
    """Workspace members and their role codes (`Tx.members`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def roles(self, project_id: int, user_id: int) -> set[str] | None:
        """The member's role codes; None when the user is not a member of the workspace."""
        member = self.conn.execute(
            sa.select(project_members.c.user_id).where(
                project_members.c.project_id == project_id, project_members.c.user_id == user_id
            )
        ).first()
        if member is None:
            return None
        rows = self.conn.execute(
            sa.select(member_roles.c.role_code).where(
                member_roles.c.project_id == project_id, member_roles.c.user_id == user_id
            )
        )
        return {str(r) for r in rows.scalars()}

    def projects(self, user_id: int) -> set[int]:
        """The workspaces the user is a member of."""
        rows = self.conn.execute(
            sa.select(project_members.c.project_id).where(project_members.c.user_id == user_id)
        )
        return {int(p) for p in rows.scalars()}

    def add(self, project_id: int, user_id: int, roles: Iterable[str], now_ms: int) -> None:
        """ProjectNotFound, UserNotFound (by id), or Conflict for a member already."""
        project_by_id(self.conn, project_id)
        if user_by_id(self.conn, user_id) is None:
            raise UserNotFound(user_id=user_id)
        if self.roles(project_id, user_id) is not None:
            raise Conflict(f"The user {user_id} is a member of the workspace {project_id} already.")
        self.conn.execute(
            sa.insert(project_members).values(
                project_id=project_id, user_id=user_id, status="Normal", create_time=now_ms
            )
        )
        self._grant(project_id, user_id, roles)

    def change_roles(
        self, project_id: int, user_id: int, roles: Sequence[str], grant: bool
    ) -> None:
        """Grant (or revoke) role codes of a member."""
        self._require(project_id, user_id)
        if grant:
            self._grant(project_id, user_id, roles)
        else:
            self.conn.execute(
                sa.delete(member_roles).where(
                    member_roles.c.project_id == project_id,
                    member_roles.c.user_id == user_id,
                    member_roles.c.role_code.in_(list(roles)),
                )
            )

    def remove(self, project_id: int, user_id: int) -> None:
        self._require(project_id, user_id)
        for table in (member_roles, project_members):
            self.conn.execute(
                sa.delete(table).where(table.c.project_id == project_id, table.c.user_id == user_id)
            )

    def find(
        self, project_id: int, user_ids: Sequence[int] | None, role_codes: Sequence[str] | None
    ) -> list[tuple[User, str, set[str]]]:
        """(user, status, role codes) of the workspace's members matching, by user id."""
        project_by_id(self.conn, project_id)
        rows = self.conn.execute(
            sa.select(users, project_members.c.status)
            .join(project_members, project_members.c.user_id == users.c.id)
            .where(project_members.c.project_id == project_id)
            .order_by(users.c.id)
        ).all()
        found = []
        for r in rows:
            if user_ids is not None and int(r.id) not in user_ids:
                continue
            roles = self.roles(project_id, int(r.id)) or set()
            if role_codes is not None and not roles & set(role_codes):
                continue
            found.append((_user(r), str(r.status), roles))
        return found

    def _require(self, project_id: int, user_id: int) -> None:
        project_by_id(self.conn, project_id)
        if self.roles(project_id, user_id) is None:
            raise MemberNotFound(project_id, user_id)

    def _grant(self, project_id: int, user_id: int, roles: Iterable[str]) -> None:
        have = self.roles(project_id, user_id) or set()
        new = [r for r in dict.fromkeys(roles) if r not in have]
        if new:
            self.conn.execute(
                sa.insert(member_roles),
                [{"project_id": project_id, "user_id": user_id, "role_code": r} for r in new],
            )
