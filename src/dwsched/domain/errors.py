"""The one exception tree of dwsched.

Every error a client can cause is a `DwschedError`. The API maps each class to an HTTP
status and a DataWorks `Code` in one table (`dwsched.api.errors`); the CLI prints the message.
"""

from __future__ import annotations


class DwschedError(Exception):
    """Root of every error dwsched raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DwschedError):
    """A parameter has a value that is not allowed. `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class MissingArgument(DwschedError):
    """A required parameter is absent."""

    def __init__(self, param: str) -> None:
        super().__init__(f"The required parameter {param} is missing.")
        self.param = param


class NotFound(DwschedError):
    """Something named by id does not exist."""


class ProjectNotFound(NotFound):
    def __init__(self, project_id: int) -> None:
        super().__init__(f"The workspace {project_id} does not exist.")
        self.project_id = project_id


class InstanceNotFound(NotFound):
    def __init__(self, instance_id: int) -> None:
        super().__init__(f"The workflow instance {instance_id} does not exist.")
        self.instance_id = instance_id


class TaskInstanceNotFound(NotFound):
    def __init__(self, task_instance_id: int) -> None:
        super().__init__(f"The task instance {task_instance_id} does not exist.")
        self.task_instance_id = task_instance_id


class DefinitionNotFound(NotFound):
    def __init__(self, definition_id: str) -> None:
        super().__init__(f"The workflow definition {definition_id} does not exist.")


class WorkflowNotFound(NotFound):
    def __init__(self, workflow_id: int) -> None:
        super().__init__(f"The workflow {workflow_id} does not exist.")


class ScheduledInstanceNotFound(NotFound):
    """No instance of the task is scheduled at that time (TriggerSchedulerTaskInstance): the
    task instance it names does not exist."""

    def __init__(self, task_id: int, env: str, trigger_time: int) -> None:
        super().__init__(f"The task {task_id} has no {env} instance scheduled at {trigger_time}.")


class RunNotFound(NotFound):
    """A task instance has not had the run (RunNumber) asked for."""


class MemberNotFound(NotFound):
    def __init__(self, project_id: int, user_id: int) -> None:
        super().__init__(f"The user {user_id} is not a member of the workspace {project_id}.")


class RoleNotFound(NotFound):
    def __init__(self, code: str) -> None:
        super().__init__(f"The workspace role {code!r} does not exist.")


class OperationNotFound(NotFound):
    def __init__(self, operation_id: str) -> None:
        super().__init__(f"The operation {operation_id!r} does not exist.")


class AlertRuleNotFound(NotFound):
    def __init__(self, rule_id: int) -> None:
        super().__init__(f"The alert rule {rule_id} does not exist.")
        self.rule_id = rule_id


class AccessKeyNotFound(NotFound):
    def __init__(self, access_key_id: str) -> None:
        super().__init__(f"The AccessKeyId {access_key_id} does not exist.")


class UnknownAction(NotFound):
    """The action, or the action in this version, is not served."""


class Conflict(DwschedError):
    """The request contradicts the current state (a duplicate name, a non-empty workspace)."""


class ProjectNotEmpty(Conflict):
    pass


class InstancesExist(Conflict):
    """Instances with these ids exist already."""

    def __init__(self, ids: list[int]) -> None:
        shown = ", ".join(str(i) for i in ids[:10])
        super().__init__(f"{len(ids)} instance ids exist already ({shown}); use --replace.")
        self.ids = ids


class InstancesMoved(Conflict):
    """An import would move an existing instance to another workspace."""

    def __init__(self, instance_id: int, was: int, wanted: int) -> None:
        super().__init__(
            f"Instance {instance_id} belongs to workspace {was}; the import puts it in "
            f"workspace {wanted}. --replace never moves an instance between workspaces (an "
            "id stays in its workspace, which authorisation relies on): give it another Id."
        )
        self.instance_id = instance_id


class AuthenticationError(DwschedError):
    """The request's signature, key, time or nonce is not acceptable."""


class IncompleteSignature(AuthenticationError):
    pass


class SignatureMismatch(AuthenticationError):
    pass


class AccessKeyInactive(AuthenticationError):
    pass


class TimestampInvalid(AuthenticationError):
    pass


class TimestampExpired(AuthenticationError):
    pass


class NonceUsed(AuthenticationError):
    pass


class StoreUnavailable(DwschedError):
    """The database cannot be opened or reached."""


class StoreBusy(DwschedError):
    """The database stayed locked by another writer past the busy timeout."""


class Forbidden(DwschedError):
    """The caller's policies or workspace roles do not allow the action (RAM's 403)."""

    def __init__(
        self, message: str, detail: dict[str, str], workspaces: frozenset[int] = frozenset()
    ) -> None:
        super().__init__(message)
        self.detail = detail  # AccessDeniedDetail: AuthAction, AuthPrincipalType, ...
        self.workspaces = workspaces  # those the request touched (for the audit log)


class Throttled(DwschedError):
    """The caller's AccessKey is over its request rate; retry after `retry_after_ms`."""

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class UserNotFound(NotFound):
    """No user has this name (`name`) or id (`user_id`)."""

    def __init__(self, name: str | None = None, user_id: int | None = None) -> None:
        shown = repr(name) if name is not None else str(user_id)
        super().__init__(f"The user {shown} does not exist.")
        self.name = name
        self.user_id = user_id
