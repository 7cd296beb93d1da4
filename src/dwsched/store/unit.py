"""The unit of work: one transaction and a repository per noun on it.

`with store.read() as tx:` (or `store.write()`) opens the transaction; `tx.projects`,
`tx.instances`, ... each make their repository on first use, all on the same connection, so
whatever one unit of work does commits or rolls back together. A repository is a class in
its noun's module (its SQL stays there), made from the connection alone (the key
repository also takes the store's server key).

A new noun is a new module with its repository class, and one cached property here.
`tx.conn` stays available for what no repository says yet (tests' raw SQL).
"""

from __future__ import annotations

from functools import cached_property

import sqlalchemy as sa

from dwsched.store.access import Groups, Members, Policies, Users
from dwsched.store.alerts import AlertRules
from dwsched.store.attempts import Attempts
from dwsched.store.audit import AuditLog
from dwsched.store.creation import Operations
from dwsched.store.definitions import Definitions
from dwsched.store.instances import Instances
from dwsched.store.keys import Keys
from dwsched.store.nonces import Nonces
from dwsched.store.outbox import Outbox
from dwsched.store.projects import Projects
from dwsched.store.resource_groups import ResourceGroups
from dwsched.store.secrets import SecretBox
from dwsched.store.sessions import Sessions
from dwsched.store.signins import SignIns
from dwsched.store.summaries import Summaries
from dwsched.store.task_instances import TaskInstances
from dwsched.store.throttle import Buckets
from dwsched.store.transitions import StatusEvents
from dwsched.store.workers import Workers
from dwsched.store.workflows import Workflows


class Tx:
    """One transaction of a Store (`Store.read()` / `Store.write()`)."""

    def __init__(self, conn: sa.Connection, secrets: SecretBox | None) -> None:
        self.conn = conn
        self.secrets = secrets

    # One line of registration per noun: the repository on this transaction.

    @cached_property
    def projects(self) -> Projects:
        return Projects(self.conn)

    @cached_property
    def instances(self) -> Instances:
        return Instances(self.conn)

    @cached_property
    def definitions(self) -> Definitions:
        return Definitions(self.conn)

    @cached_property
    def workflows(self) -> Workflows:
        return Workflows(self.conn)

    @cached_property
    def task_instances(self) -> TaskInstances:
        return TaskInstances(self.conn)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.conn, self.secrets)

    @cached_property
    def nonces(self) -> Nonces:
        return Nonces(self.conn)

    @cached_property
    def users(self) -> Users:
        return Users(self.conn, self.secrets)

    @cached_property
    def groups(self) -> Groups:
        return Groups(self.conn)

    @cached_property
    def policies(self) -> Policies:
        return Policies(self.conn)

    @cached_property
    def members(self) -> Members:
        return Members(self.conn)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.conn)

    @cached_property
    def sessions(self) -> Sessions:
        return Sessions(self.conn)

    @cached_property
    def signins(self) -> SignIns:
        return SignIns(self.conn)

    @cached_property
    def summaries(self) -> Summaries:
        return Summaries(self.conn)

    @cached_property
    def throttle(self) -> Buckets:
        return Buckets(self.conn)

    @cached_property
    def attempts(self) -> Attempts:
        return Attempts(self.conn)

    @cached_property
    def workers(self) -> Workers:
        return Workers(self.conn)

    @cached_property
    def resource_groups(self) -> ResourceGroups:
        return ResourceGroups(self.conn)

    @cached_property
    def events(self) -> StatusEvents:
        return StatusEvents(self.conn)

    @cached_property
    def operations(self) -> Operations:
        return Operations(self.conn)

    @cached_property
    def alerts(self) -> AlertRules:
        return AlertRules(self.conn, self.secrets)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.conn, self.secrets)
