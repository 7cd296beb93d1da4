"""The `Owner` filter of the List actions: an account id, as DataWorks takes it.

Owners, creators and operators are account ids (domain.users.account_id): a user's id, or
the tenant's for its own keys. Owners recorded before that were AccessKeyIds or user names
(migration 0013 rewrote them), and clients may still filter by those: such a value is read
as the account it names, so `Owner=<AccessKeyId>` and `Owner=<user name>` keep matching.
"""

from __future__ import annotations

from dwsched.api.context import Context
from dwsched.api.params import Params

MAX_OWNER = 64


def owner_filter(ctx: Context, p: Params) -> str | None:
    """The account id the request's `Owner` names (None: no Owner filter). Digits are an
    account id already; other text that names an AccessKey or a user becomes that account's
    id; anything else is matched as it is (an owner a FlowSpec gave as text)."""
    text = p.text("Owner", max_length=MAX_OWNER)
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return text
    with ctx.store.read() as tx:
        return tx.users.account_named(text) or text
