"""deploy/: the Grafana dashboard and the Prometheus rules load, and every metric they use
is one a real server's scrape has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.metrics.scrape import scrape
from tests.support.server import running_server

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\bdwsched_[a-z_]+\b")
# A sample's name is its family's plus one of these (a counter's `_total`; a histogram's
# `_bucket`, `_count`, `_sum`).
SUFFIXES = {"_total": "counter", "_bucket": "histogram", "_count": "histogram", "_sum": "histogram"}


def _used() -> dict[str, set[str]]:
    """File -> the metric names its expressions use."""
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert dashboard["panels"] and dashboard["title"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert all(r["alert"] and r["expr"] for r in alerts)
    return {
        "grafana-dashboard.json": {n for e in exprs for n in NAME.findall(e)},
        "prometheus-rules.yml": {n for r in alerts for n in NAME.findall(r["expr"])},
    }


def test_every_metric_the_deploy_files_use_is_scraped(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'deploy.db'}") as live:
        found = scrape(f"http://{live.endpoint}")

    def scraped(name: str) -> bool:
        if name in found.families:
            return True
        return any(
            name.endswith(suffix)
            and name.removesuffix(suffix) in found.families
            and found.families[name.removesuffix(suffix)].type == kind
            for suffix, kind in SUFFIXES.items()
        )

    for file, used in _used().items():
        assert used, file
        missing = sorted(n for n in used if not scraped(n))
        assert not missing, f"{file} uses metrics no scrape has: {missing}"
