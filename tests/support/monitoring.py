"""The metrics that deploy/prometheus/alerts.yml and deploy/grafana/mailstream.json name, for the
monitoring tests of every tier."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy/prometheus"
DASHBOARD = ROOT / "deploy/grafana/mailstream.json"


def dashboard_panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label names and functions are not metrics)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_clauses = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_labels)
    return set(re.findall(r"\b(mailstream_[a-z0-9_]+|up)\b", without_clauses))


def named_metrics() -> set[str]:
    exprs = [r["expr"] for r in alert_rules()] + dashboard_queries()
    return set().union(*(metric_names(e) for e in exprs)) - {"up"}
