from __future__ import annotations

from alibabacloud_dataworks_public20240518 import models

from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put
from tests.support.server import LiveServer


def test_list_with_sdk_both_signatures(live: LiveServer) -> None:
    p = project(live.store)
    put(live.store, [instance(p.id) for _ in range(3)])
    for algorithm in ("v3", "v2"):
        body = (
            live.sdk(algorithm)
            .list_workflow_instances(
                models.ListWorkflowInstancesRequest(project_id=p.id, biz_date=SHANGHAI_DAY_MS)
            )
            .body
        )
        assert body.paging_info.total_count == 3
        ids = [i.id for i in body.paging_info.workflow_instances]
        assert ids == sorted(ids, reverse=True)
        assert body.paging_info.workflow_instances[0].biz_date == SHANGHAI_DAY_MS
