"""What the web tests share."""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_dataworks_public20240518 import models as M

from tests.support.server import LiveServer


def deploy(live: LiveServer, project_id: int, spec: dict[str, Any]) -> int:
    """Deploy a FlowSpec workflow through the official SDK; its workflow id."""
    sdk = live.sdk()
    job = sdk.import_workflow_definition(
        M.ImportWorkflowDefinitionRequest(project_id=project_id, spec=json.dumps(spec))
    ).body.async_job
    return int(
        sdk.get_workflow_definition(
            M.GetWorkflowDefinitionRequest(id=job.response)
        ).body.workflow_definition.workflow_id
    )
