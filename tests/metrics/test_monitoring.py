"""monitoring/: the Prometheus config, alert rules and Grafana dashboard parse, use only
metric names that /metrics really exposes, and work against the real Prometheus."""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.tools import requires_tool

from .conftest import labels, make_audit, make_log, parse, scrape

MONITORING = Path(django_settings.BASE_DIR) / "monitoring"
RULES = MONITORING / "rules" / "dbarchitect.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "dbarchitect.json"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = requires_tool(PROMTOOL is not None, "promtool (Debian: prometheus)")
# A metric name in PromQL; only names of this app and of django-prometheus are checked.
METRIC_NAME = re.compile(r"\b(?:db_architect|django)_[a-zA-Z0-9_]+\b")

pytestmark = pytest.mark.urls("tests.metrics.urls")


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"]]
    return exprs


SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


@pytest.fixture
def exposed(client, history) -> set[str]:
    """Every sample name /metrics declares (a labelled counter has no sample before its first
    event, e.g. django_db_errors_total, but its family is declared all the same)."""
    client.get("/healthz")
    text = client.get("/metrics").content.decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, [""]))
        names.update(sample.name for sample in family.samples)
    return names


def test_alert_rules_cover_what_operators_asked_for():
    exprs = rule_expressions()
    assert "db_architect_confidence_score" in exprs["DbArchitectLowConfidence"]
    assert "< 0.6" in exprs["DbArchitectLowConfidence"]
    assert "db_architect_last_audit_failed" in exprs["DbArchitectAuditFailed"]
    assert "8 * 86400" in exprs["DbArchitectNoRecentAudit"]


def test_rules_use_only_exposed_metric_names(exposed):
    used = {name for expr in rule_expressions().values() for name in METRIC_NAME.findall(expr)}
    assert used
    assert used - exposed == set()


def test_dashboard_uses_only_exposed_metric_names(exposed):
    used = {name for expr in dashboard_expressions() for name in METRIC_NAME.findall(expr)}
    assert used - exposed == set()


def test_dashboard_has_a_panel_for_every_agent_metric(client, history):
    families = {name.split("{")[0] for name in scrape(client) if name.startswith("db_architect_")}
    text = " ".join(dashboard_expressions())
    # A family is shown when any of its samples (_total, _bucket, _sum, ...) is queried.
    stems = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in families}
    missing = {stem for stem in stems if stem not in text}
    assert missing == set()
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in text


def test_dashboard_panels_use_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    provisioned = yaml.safe_load(
        (MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert {p["datasource"]["uid"] for p in panels} == {provisioned["uid"]}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for p in panels:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24, p["title"]


@needs_promtool
def test_promtool_checks_config_rules_and_rule_unit_tests(tmp_path):
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    token_file = tmp_path / "metrics_token"
    token_file.write_text("token")
    config["rule_files"] = [str(RULES)]
    config["scrape_configs"][0]["authorization"]["credentials_file"] = str(token_file)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    for args in (
        ["check", "config", str(tmp_path / "prometheus.yml")],
        ["test", "rules", *map(str, sorted((MONITORING / "tests").glob("*.yml")))],
    ):
        result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_metrics_page_passes_promtool_lint(client, history):
    text = client.get("/metrics").content
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@requires_tool(PROMETHEUS is not None, "prometheus (Debian: prometheus)")
@pytest.mark.django_db(transaction=True)
def test_real_prometheus_scrapes_with_the_token_and_fires_low_confidence(
    live_server, history, settings, tmp_path
):
    # Only the token lets Prometheus in: its address (127.0.0.1) is not allowed.
    settings.METRICS_ALLOWED_IPS = ["192.0.2.1"]
    settings.METRICS_BEARER_TOKEN = "prometheus-test-token"
    later = make_audit(
        history["shop"], status="succeeded", started=history["new"].finished_at, seconds=5
    )
    make_log(later, kind="index", confidence=0.3, gain=12.0)

    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES)]
    job = config["scrape_configs"][0]
    host = live_server.url.removeprefix("http://")
    job["static_configs"] = [{"targets": [host]}]
    (tmp_path / "token").write_text("prometheus-test-token")
    job["authorization"]["credentials_file"] = str(tmp_path / "token")
    wrong = {
        **job,
        "job_name": "wrong_token",
        "authorization": {"type": "Bearer", "credentials": "nope"},
    }
    config["scrape_configs"] = [job, wrong]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    server = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Wait until both jobs were scraped and the rules evaluated (a minute at most).
        firing, up, deadline = [], {}, time.monotonic() + 60
        while (not firing or len(up) < 2) and time.monotonic() < deadline:
            if server.poll() is not None:
                break
            time.sleep(0.5)
            try:
                alerts = _get_json(f"{api}/alerts")["data"]["alerts"]
                result = _get_json(f"{api}/query?query=up")["data"]["result"]
            except OSError:
                continue  # not listening yet
            firing = [a for a in alerts if a["state"] == "firing"]
            up = {r["metric"]["job"]: r["value"][1] for r in result}
        assert server.poll() is None, server.stderr.read().decode()
        assert [(a["labels"]["alertname"], a["labels"]["target"]) for a in firing] == [
            ("DbArchitectLowConfidence", "shop")
        ]
        assert float(firing[0]["value"]) == pytest.approx(0.3)
        assert up == {"dbarchitect": "1", "wrong_token": "0"}
        query = "db_architect_slow_queries_total"
        result = _get_json(f"{api}/query?query={query}")["data"]["result"]
        assert {r["metric"]["target"]: r["value"][1] for r in result} == {
            "shop": "5",
            "idle": "0",
            "default": "0",
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_scrape_values_match_a_recount(client, history):
    # The parser used everywhere here agrees with the raw text on one known sample.
    text = client.get("/metrics").content.decode()
    assert 'db_architect_slow_queries_total{target="shop"} 5.0' in text
    assert parse(text)["db_architect_slow_queries_total"][labels(target="shop")] == 5
