"""Webhook URLs at rest (alert rules' receivers, users' webhooks): sealed with the server
key, opened whole for the code above the store, and sealed anew by a key rotation."""

from __future__ import annotations

import sqlalchemy as sa

from dwsched.domain import alerts
from dwsched.store import SecretBox, Store, generate_server_key
from dwsched.store.schema import alert_rules, users
from tests.support.factories import project

URL = "https://open.feishu.cn/open-apis/bot/v2/hook/SECRET-token"


def test_webhooks_are_sealed_and_resealed_by_a_rotation(store: Store) -> None:
    old = SecretBox(generate_server_key(), "the old key")
    new = SecretBox(generate_server_key(), "the new key")
    sealed = store.sealing_with(old)
    pid = project(store).id
    with sealed.write() as tx:
        user = tx.users.create("hooked", "hooked", 1)
        tx.users.set_webhook("hooked", URL)
        tx.users.set_email("hooked", "hooked@example.com")
        rule_id = tx.alerts.create(
            alerts.NewRule(
                "r",
                user.id,
                True,
                alerts.parse_trigger(
                    {"Type": "Error", "Target": {"Type": "Project", "Ids": [pid]}}
                ),
                alerts.parse_notification(
                    {
                        "Channels": ["Feishu"],
                        "Receivers": [{"ReceiverType": "FeishuUrl", "ReceiverValues": [URL]}],
                    }
                ),
                {pid: pid},
            ),
            "test",
            1,
        )

    def stored() -> list[str]:
        with store.read() as tx:
            return [
                tx.conn.execute(sa.select(alert_rules.c.notification)).scalar_one(),
                tx.conn.execute(
                    sa.select(users.c.webhook).where(users.c.name == "hooked")
                ).scalar_one(),
            ]

    assert all("SECRET" not in s and f"enc:{old.key_id}:" in s for s in stored())
    with sealed.write() as tx:
        assert tx.alerts.reseal(new) == 1
        assert tx.users.reseal_webhooks(new) == 1
    assert all(f"enc:{new.key_id}:" in s for s in stored())
    with store.sealing_with(new).read() as tx:
        assert tx.alerts.get(rule_id).notification.receivers[0].values == (URL,)
        (contact,) = tx.users.contacts([user.id])
        assert (contact.email, contact.webhook) == ("hooked@example.com", URL)
        assert tx.alerts.rules_for(10**9, pid)[0].id == rule_id
