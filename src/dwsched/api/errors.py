"""The one table from dwsched errors to DataWorks error envelopes (DESIGN.md §2)."""

from __future__ import annotations

from typing import Any

from dwsched.domain import errors as e

API_VERSION = "2024-05-18"

# Most specific first: the first class an error is an instance of decides.
TABLE: list[tuple[type[e.DwschedError], int, str]] = [
    (e.MissingArgument, 400, "MissingParameter"),
    (e.InvalidArgument, 400, "InvalidParameter"),
    (e.ProjectNotFound, 404, "Invalid.Tenant.ProjectNotExist"),
    (e.InstanceNotFound, 404, "Invalid.WorkflowInstance.NotExist"),
    (e.TaskInstanceNotFound, 404, "Invalid.TaskInstance.NotExist"),
    (e.ScheduledInstanceNotFound, 404, "Invalid.TaskInstance.NotExist"),
    (e.DefinitionNotFound, 404, "Invalid.WorkflowDefinition.NotExist"),
    (e.WorkflowNotFound, 404, "Invalid.Workflow.NotExist"),
    (e.AlertRuleNotFound, 404, "Invalid.AlertRule.NotExist"),
    (e.OperationNotFound, 404, "Invalid.Operation.NotExist"),
    (e.RunNotFound, 404, "Invalid.TaskInstanceRun.NotExist"),
    (e.MemberNotFound, 404, "Invalid.ProjectMember.NotExist"),
    (e.RoleNotFound, 404, "Invalid.ProjectRole.NotExist"),
    (e.UserNotFound, 404, "Invalid.User.NotExist"),
    (e.AccessKeyNotFound, 404, "InvalidAccessKeyId.NotFound"),
    (e.UnknownAction, 404, "InvalidAction.NotFound"),
    # Every NotFound the API raises has its own `Invalid.<Noun>.NotExist` code above; this
    # one is for what only the commands raise (a group, a policy).
    (e.NotFound, 404, "NotFound"),
    (e.ProjectNotEmpty, 409, "OperationDenied.ProjectNotEmpty"),
    (e.Conflict, 409, "Conflict"),
    (e.IncompleteSignature, 400, "IncompleteSignature"),
    (e.SignatureMismatch, 400, "SignatureDoesNotMatch"),
    (e.AccessKeyInactive, 400, "InvalidAccessKeyId.Inactive"),
    (e.TimestampInvalid, 400, "InvalidTimeStamp.Format"),
    (e.TimestampExpired, 400, "InvalidTimeStamp.Expired"),
    (e.NonceUsed, 400, "SignatureNonceUsed"),
    (e.StoreBusy, 503, "ServiceUnavailable"),
    (e.Forbidden, 403, "Forbidden.RAM"),
    (e.Throttled, 429, "Throttling.User"),
]


def status_and_code(error: e.DwschedError) -> tuple[int, str]:
    for kind, status, code in TABLE:
        if isinstance(error, kind):
            return status, code
    return 400, "InvalidParameter"


def envelope(request_id: str, status: int, code: str, message: str) -> dict[str, Any]:
    return {"RequestId": request_id, "HttpStatusCode": status, "Code": code, "Message": message}


def error_body(
    request_id: str, error: e.DwschedError
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The HTTP status, the JSON envelope and the extra headers of an error: a 403 carries
    AccessDeniedDetail; a 429 `x-acs-retry-after` (ms), which makes the SDK raise
    ThrottlingException."""
    status, code = status_and_code(error)
    body = envelope(request_id, status, code, error.message)
    headers: dict[str, str] = {}
    if isinstance(error, e.Forbidden):
        body["AccessDeniedDetail"] = error.detail
    if isinstance(error, e.Throttled):
        headers["x-acs-retry-after"] = str(max(1, error.retry_after_ms))
    return status, body, headers


INTERNAL_ERROR = (
    500,
    "InternalError",
    "The request processing has failed due to some unknown error.",
)
