"""The Prometheus configs and alert rules pass promtool (checks and the rules' unit tests), and the
Grafana dashboard is well formed with valid PromQL. tests/e2e/test_monitoring_metrics.py checks
that every metric they name is one the running services export."""

import subprocess
from pathlib import Path

import pytest
import yaml
from monitoring import PROMETHEUS, alert_rules, dashboard_panels, dashboard_queries, metric_names, named_metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SERVICE_ROWS = {"Gateway", "Renderer", "Sender", "Tracker", "Delivery funnel"}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "kubernetes.yml"])
def test_the_scrape_configs_are_valid(config):
    assert "SUCCESS" in promtool("check", "config", config)


def test_the_alert_rules_are_valid_and_their_unit_tests_pass():
    promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_unit_test_and_an_entry_in_the_operations_guide():
    alerts = {r["alert"] for r in alert_rules()}
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    tested = {t["alertname"] for test in tests for t in test.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert alerts == tested
    guide = (ROOT / "docs/operations.md").read_text()
    assert [a for a in sorted(alerts) if f"`{a}`" not in guide] == []


def test_the_dashboard_has_a_row_per_service_and_the_funnel_and_well_placed_panels():
    panels = dashboard_panels()
    assert SERVICE_ROWS <= {p["title"] for p in panels if p["type"] == "row"}
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["type"] == "prometheus", panel["title"]


def test_every_dashboard_query_is_valid_promql(tmp_path):
    # promtool parses a rule file's expressions: the queries as recording rules.
    recorded = [{"record": f"q{i}", "expr": q} for i, q in enumerate(dashboard_queries())]
    rules = {"groups": [{"name": "dashboard", "rules": recorded}]}
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump(rules))
    promtool("check", "rules", "dashboard.rules.yml", cwd=tmp_path)


def test_metric_names_are_read_from_queries():
    expr = 'sum by (le, route) (rate(mailstream_x_seconds_bucket{route="/a"}[5m])) / up{job="j"}'
    assert metric_names(expr) == {"mailstream_x_seconds_bucket", "up"}
    assert "mailstream_consumer_lag" in named_metrics()
