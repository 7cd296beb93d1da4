"""The console's GetAccountNames view over real HTTP, on both databases: the names of a
workspace's members (and the tenant's own account) for the account ids Owner and CreateUser
hold; no name for anyone else; authorised as ListProjectMembers."""

from __future__ import annotations

from dwsched.clock import SystemClock
from tests.support.factories import project
from tests.support.server import LiveServer
from tests.web.test_console_http import console_answer, live, sign_in, user

__all__ = ["live"]  # the fixture: a server on each database


def test_account_ids_are_named_for_the_workspaces_members_only(live: LiveServer) -> None:
    shop = project(live.store, "shop").id
    other = project(live.store, "other").id
    member = user(live, "member_name", "ReadOnlyAccess")
    outsider = user(live, "outsider_name", "ReadOnlyAccess")
    with live.store.write() as tx:
        tx.members.add(shop, member, ["role_project_guest"], SystemClock().now_ms())
    reader = sign_in(live, "member_name")
    ids = [str(member), str(outsider), "0", "LTAInot-an-id"]
    answer = reader.call("GetAccountNames", ProjectId=shop, Ids=ids).json()
    assert answer["Names"] == {str(member): "member_name", "0": "tenant"}
    status, code, message = console_answer(reader, "GetAccountNames", ProjectId=other, Ids=ids)
    assert (status, code) == (403, "Forbidden.RAM"), message
    status, code, message = console_answer(
        reader, "GetAccountNames", ProjectId=shop, Ids=[str(n) for n in range(21)]
    )
    assert (status, code) == (400, "InvalidParameter") and "Ids" in message
