"""What the audit log keeps of a mutating request: who, with which key, the action, the ids
it names, its parameters (values that could be secrets removed, long ones cut), how it
ended, its RequestId and where it came from."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dwsched.domain.alerts import mask_document_text
from dwsched.domain.audit import AuditEntry

SECRET = re.compile(r"secret|password|passwd|token|credential|signature", re.IGNORECASE)
TARGET_PARAMS = ("Id", "Ids", "TaskId", "OperationId", "WorkflowId", "UserId", "ProjectId")
MAX_VALUE = 2_000
# Parameters that hold webhook URLs (a robot's token is in them): kept with the URLs masked.
MASKED = {"Notification": mask_document_text}


def result_of(answer: Mapping[str, Any]) -> str:
    """How a request that was answered ended: OK, or, for a batch whose ids were refused
    one by one (`SuccessInfo`, HTTP 200 all the same), how many were."""
    info = answer.get("SuccessInfo")
    if not isinstance(info, Mapping) or not info:
        return "OK"
    refused = sum(1 for v in info.values() if isinstance(v, Mapping) and not v.get("Success"))
    if not refused:
        return "OK"
    if refused == len(info):
        return f"Refused ({refused} of {len(info)} ids)"
    return f"Partial ({refused} of {len(info)} ids refused)"


def entry(
    *,
    now_ms: int,
    user: str,
    access_key_id: str,
    action: str,
    params: Mapping[str, str],
    result: str,
    request_id: str,
    source: str,
    answer: Mapping[str, Any] | None = None,
    workspaces: frozenset[int] = frozenset(),
) -> AuditEntry:
    """The entry; its workspace is the one the request touched (the first, if a batch
    touched several), else its ProjectId parameter."""
    shown = {k: MASKED[k](v) if k in MASKED else v for k, v in params.items()}
    kept = {
        k: ("***" if SECRET.search(k) else (v if len(v) <= MAX_VALUE else v[:MAX_VALUE] + "…"))
        for k, v in sorted(shown.items())
        if k not in ("Action", "Version", "AccessKeyId", "Signature", "SignatureNonce")
    }
    targets = [f"{k}={params[k]}" for k in TARGET_PARAMS if k in params]
    targets += [f"{k}={v}" for k, v in params.items() if k.startswith("Ids.")]
    if answer is not None and "OperationId" in answer:
        targets.append(f"OperationId={answer['OperationId']}")
    project = params.get("ProjectId", "")
    return AuditEntry(
        id=0,
        create_time=now_ms,
        user=user,
        access_key_id=access_key_id,
        action=action,
        project_id=(
            min(workspaces)
            if workspaces
            else int(project)
            if re.fullmatch(r"[0-9]{1,18}", project)
            else None
        ),
        targets=json.dumps(targets, ensure_ascii=False),
        parameters=json.dumps(kept, ensure_ascii=False),
        result=result,
        request_id=request_id,
        source=source,
    )
