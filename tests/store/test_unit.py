"""The unit of work: one transaction, a repository per noun on it, on both databases."""

from __future__ import annotations

import pytest

from dwsched.domain.errors import Conflict, ProjectNotFound, UserNotFound
from dwsched.domain.models import NewProject
from dwsched.domain.users import PrincipalType
from dwsched.store import Store

NOW = 1_700_000_000_000


def test_repositories_of_one_unit_commit_together(store: Store) -> None:
    with store.write() as tx:
        made = tx.projects.create(NewProject(name="together", timezone="UTC"), NOW)
        user = tx.users.create("ann", "Ann", NOW)
        tx.members.add(made.id, user.id, ["role_project_guest"], NOW)
    with store.read() as tx:
        assert tx.projects.get(made.id).name == "together"
        assert tx.members.roles(made.id, user.id) == {"role_project_guest"}


def test_an_error_rolls_back_every_repository_of_the_unit(store: Store) -> None:
    with pytest.raises(Conflict), store.write() as tx:
        tx.projects.create(NewProject(name="undone", timezone="UTC"), NOW)
        tx.users.create("bob", "Bob", NOW)
        tx.users.create("bob", "Bob again", NOW)
    with store.read() as tx:
        assert tx.projects.page(names=["undone"]) == (0, [])
        with pytest.raises(UserNotFound):
            tx.users.get("bob")


def test_a_repository_is_made_once_per_unit_and_anew_for_the_next(store: Store) -> None:
    with store.read() as tx:
        assert tx.projects is tx.projects
        assert tx.projects.conn is tx.conn is tx.users.conn
        first = tx.projects
    with store.read() as tx:
        assert tx.projects is not first


def test_missing_things_are_named_by_what_is_missing_not_by_a_parameter(store: Store) -> None:
    with store.write() as tx:
        made = tx.projects.create(NewProject(name="named", timezone="UTC"), NOW)
    with pytest.raises(UserNotFound) as missing, store.write() as tx:
        tx.members.add(made.id, 424_242, ["role_project_guest"], NOW)
    assert missing.value.user_id == 424_242
    with pytest.raises(ProjectNotFound), store.write() as tx:
        tx.members.add(987_654, 424_242, [], NOW)


def test_policies_attach_to_users_and_groups(store: Store) -> None:
    with store.write() as tx:
        tx.users.create("cid", "Cid", NOW)
        tx.groups.create("ops", NOW)
        tx.groups.add("ops", "cid")
        tx.policies.create("Mine", '{"Version": "1", "Statement": []}', "", NOW)
        tx.policies.attach("Mine", PrincipalType.GROUP, "ops", attach=True)
        tx.policies.attach("ReadOnlyAccess", PrincipalType.USER, "cid", attach=True)
    with store.read() as tx:
        assert tx.policies.attachments() == [
            ("Mine", "Group", "ops"),
            ("ReadOnlyAccess", "User", "cid"),
        ]
        principal = tx.users.principal(tx.users.get("cid").id)
        assert principal.policy_names == ("Mine", "ReadOnlyAccess")
