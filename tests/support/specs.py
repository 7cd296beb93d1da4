"""FlowSpec dicts whose output names are their own workflow's.

An output name (`nodes[].outputs.nodeOutputs[].data`) is owned by one deployed node per
environment over every workspace of a database, as in DataWorks: deploying a second workflow
that produces it is refused. Tests that deploy the same spec into several workspaces or
workflows of a shared test database therefore name their outputs as DataWorks users do,
`<project or workflow>.<name>`, with `qualified`.
"""

from __future__ import annotations

import copy
from typing import Any


def qualified(spec: dict[str, Any], prefix: str | None = None) -> dict[str, Any]:
    """A copy of the FlowSpec `spec` in which every output its nodes produce is named
    `<prefix>.<name>` (`prefix`: each workflow's own name when None), and so is every mention
    of such an output: node inputs, dependencies' `output` and the workflow's `outputs`.

    Names no node of the workflow produces are left as they are: branch outputs
    (`branch.branches[].output.data`) and the inputs that name them, and outputs of other
    workflows. A name already qualified with the prefix is not qualified again.
    """
    found = copy.deepcopy(spec)
    for workflow in found.get("spec", {}).get("workflows", []):
        own = prefix if prefix is not None else workflow["name"]
        nodes = workflow.get("nodes", [])
        produced = {
            item["data"]
            for node in nodes
            for item in node.get("outputs", {}).get("nodeOutputs", [])
            if not item["data"].startswith(f"{own}.")
        }

        def rename(name: str, own: str = own, produced: set[str] = produced) -> str:
            return f"{own}.{name}" if name in produced else name

        for node in nodes:
            for key in ("outputs", "inputs"):
                for item in node.get(key, {}).get("nodeOutputs", []):
                    item["data"] = rename(item["data"])
        for dependency in workflow.get("dependencies", []):
            for depend in dependency.get("depends", []):
                if "output" in depend:
                    depend["output"] = rename(depend["output"])
        for item in workflow.get("outputs", {}).get("nodeOutputs", []):
            item["data"] = rename(item["data"])
    return found
