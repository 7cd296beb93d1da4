"""An internal fault is a bare 500 InternalError; the traceback goes to the log only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_tea_openapi.exceptions import ServerException

from tests.support.factories import SHANGHAI_DAY_MS, instance, project, put
from tests.support.server import running_server


def test_internal_fault_hides_the_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    with running_server(url) as live:
        p = project(live.store)
        put(live.store, [instance(p.id)])
        with live.store.write() as tx:  # break the database under the running server
            tx.conn.exec_driver_sql("DROP TABLE instance_tags")
        request = models.ListWorkflowInstancesRequest(
            project_id=p.id, biz_date=SHANGHAI_DAY_MS, tags=["team:growth"]
        )
        with caplog.at_level(logging.ERROR, logger="dwsched.api"):
            with pytest.raises(ServerException) as raised:
                live.sdk().list_workflow_instances(request)
    error = raised.value
    assert error.status_code == 500
    assert error.code == "InternalError"
    body = error.data
    assert set(body) - {"statusCode"} == {"RequestId", "HttpStatusCode", "Code", "Message"}
    assert "instance_tags" not in body["Message"] and "Traceback" not in body["Message"]
    logged = [r for r in caplog.records if body["RequestId"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "instance_tags" in str(logged[0].exc_info[1])
