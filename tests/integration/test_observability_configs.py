"""The log and trace pipeline's configs (deploy/observability/), checked as files: no Alloy,
Loki, Tempo or Grafana binary runs here. The Alloy config is parsed (a small parser of its
syntax, below) and held against what Vigil really writes: the JSON fields it extracts are
fields of real log lines (vigil.core.logging with a request id and a span), whose module
field names Vigil's module of each logger, the pod labels it reads are labels the chart puts on
its pods, and the stream labels are exactly app, role, module and level. Loki keeps
structured metadata (trace_id, request_id), Tempo listens where the chart sends OTLP, and
Grafana's Loki data source finds the trace id in a real line."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider

from tests.support.chart import REPO, load_chart_tool, workloads
from vigil.core.logging import JsonFormatter, request_id_var

OBSERVABILITY = REPO / "deploy" / "observability"

# --------------------------------------------------------------------- Alloy's syntax, small
# Blocks `name "label" { … }`, attributes `key = value`; values: strings, numbers, booleans,
# references (a.b.c), lists and objects. Enough for config.alloy; anything else fails.
_TOKEN = re.compile(
    r"""\s+|//[^\n]*|(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)"""
    r"""|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<punct>[{}\[\]=,])"""
)


def tokens(text: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match, f"unexpected text at {pos}: {text[pos : pos + 30]!r}"
        pos = match.end()
        if match.lastgroup:
            found.append((match.lastgroup, match.group(match.lastgroup)))
    return found


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokens(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> str:
        _kind, text = self.peek()
        assert value is None or text == value, f"expected {value!r}, got {text!r}"
        self.pos += 1
        return text

    def body(self, closing: str | None) -> list[tuple[str, str | None, Any]]:
        """[(name, label, value)]: a block's value is its body, an attribute's its value."""
        items: list[tuple[str, str | None, Any]] = []
        while self.peek()[1] != (closing or ""):
            kind, name = self.peek()
            assert kind == "name", f"expected a name, got {name!r}"
            self.take()
            if self.peek()[1] == "=":
                self.take("=")
                items.append((name, None, self.value()))
                continue
            label = json.loads(self.take()) if self.peek()[0] == "string" else None
            self.take("{")
            items.append((name, label, self.body("}")))
            self.take("}")
        return items

    def value(self) -> Any:
        kind, text = self.peek()
        if kind == "string":
            return json.loads(self.take())
        if kind == "number":
            return float(self.take())
        if kind == "name":
            self.take()
            return {"true": True, "false": False}.get(text, ("ref", text))
        if text == "[":
            self.take("[")
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("]")
            return items
        self.take("{")
        obj = {}
        while self.peek()[1] != "}":
            key = self.take()
            self.take("=")
            obj[key] = self.value()
            if self.peek()[1] == ",":
                self.take(",")
        self.take("}")
        return obj


def parse_alloy(text: str) -> list[tuple[str, str | None, Any]]:
    parser = Parser(text)
    items = parser.body(None)
    assert parser.peek() == ("end", "")
    return items


def blocks(items: list[tuple[str, str | None, Any]], name: str) -> list[Any]:
    return [value for n, _label, value in items if n == name]


def attr(items: list[tuple[str, str | None, Any]], name: str) -> Any:
    (value,) = [v for n, label, v in items if n == name and label is None]
    return value


@pytest.fixture(scope="module")
def alloy() -> list[tuple[str, str | None, Any]]:
    return parse_alloy((OBSERVABILITY / "config.alloy").read_text())


def component(alloy: list[tuple[str, str | None, Any]], name: str, label: str) -> Any:
    (body,) = [v for n, lab, v in alloy if n == name and lab == label]
    return body


# --------------------------------------------------------------------- real Vigil log lines
def real_log_line(logger: str) -> dict[str, Any]:
    """One line as a Vigil process writes it while serving a request with tracing on."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(logger)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    token = request_id_var.set("req-1234")
    tracer = TracerProvider().get_tracer("test")
    try:
        with tracer.start_as_current_span("GET /api/v1/x"):
            log.warning("polled %d devices", 3)
    finally:
        request_id_var.reset(token)
        log.removeHandler(handler)
    line: dict[str, Any] = json.loads(out.getvalue())
    return line


def test_the_alloy_config_parses_and_its_references_resolve(
    alloy: list[tuple[str, str | None, Any]],
) -> None:
    names = {(n, label) for n, label, _ in alloy}
    assert names == {
        ("discovery.kubernetes", "pods"),
        ("discovery.relabel", "vigil"),
        ("loki.source.kubernetes", "vigil"),
        ("loki.process", "vigil"),
        ("loki.write", "default"),
    }
    refs = re.findall(
        r"\b((?:discovery|loki)\.[a-z.]+)\.(?:targets|output|receiver)\b",
        (OBSERVABILITY / "config.alloy").read_text(),
    )
    for ref in refs:
        kind, _, label = ref.rpartition(".")
        assert (kind, label) in names, ref
    # The broken cases fail: the parser is not a no-op.
    with pytest.raises(AssertionError):
        parse_alloy('loki.write "x" { endpoint { url = "a" }')
    with pytest.raises(AssertionError):
        parse_alloy('loki.write "x" { url: "a" }')


def test_stream_labels_are_app_role_module_level(
    alloy: list[tuple[str, str | None, Any]],
) -> None:
    relabel = component(alloy, "discovery.relabel", "vigil")
    from_pods = {
        attr(rule, "target_label")
        for rule in blocks(relabel, "rule")
        if any(n == "target_label" for n, _, _ in rule)
    }
    process = component(alloy, "loki.process", "vigil")
    (labels,) = blocks(process, "stage.labels")
    from_lines = set(attr(labels, "values"))
    assert from_lines == {"level", "module"}
    # Stream labels: the four asked for, plus where the pod runs.
    assert from_pods | from_lines == {"app", "role", "module", "level", "namespace", "pod"}
    (metadata,) = blocks(process, "stage.structured_metadata")
    assert set(attr(metadata, "values")) == {"trace_id", "request_id"}


def test_the_pod_labels_it_reads_are_the_charts(alloy: list[tuple[str, str | None, Any]]) -> None:
    chart = load_chart_tool()
    objects = chart.render(chart.CASES["full"])
    relabel = component(alloy, "discovery.relabel", "vigil")
    rules = blocks(relabel, "rule")
    keep = [r for r in rules if any(n == "action" and v == "keep" for n, _, v in r)]
    (keep_rule,) = keep
    prefix = "__meta_kubernetes_pod_label_"
    read = {s for r in rules for s in attr(r, "source_labels") if s.startswith(prefix)}
    roles = set()
    for workload in workloads(objects):
        labels = workload["spec"].get("template", {}).get("metadata", {}).get("labels")
        if labels is None:  # a CronJob's pods
            labels = workload["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        sanitized = {prefix + re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in labels.items()}
        assert read <= set(sanitized), read - set(sanitized)
        (source,) = attr(keep_rule, "source_labels")
        assert re.fullmatch(attr(keep_rule, "regex"), sanitized[source])  # every pod is kept
        roles.add(sanitized[prefix + "app_kubernetes_io_component"])
    assert {"api", "scheduler", "migrate", "worker-ingest"} <= roles


def test_the_fields_it_extracts_are_in_vigils_log_lines(
    alloy: list[tuple[str, str | None, Any]],
) -> None:
    process = component(alloy, "loki.process", "vigil")
    (json_stage,) = blocks(process, "stage.json")
    line = real_log_line("vigil.network.polling")
    fields = attr(json_stage, "expressions")
    assert set(fields.values()) <= set(line), set(fields.values()) - set(line)
    assert {"trace_id", "request_id", "level", "logger", "ts"} <= set(fields)
    assert line["request_id"] == "req-1234"
    assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
    assert line["level"] == "warning"
    # The module label comes from the line's own "module" field (vigil.core.logging).
    assert fields["module"] == "module"
    assert line["module"] == "network"
    for logger, expected in {
        "vigil.markets.jobs": "markets",
        "vigil.core.api": "core",
        "vigil.reading.service": "reading",
        "vigil.jobs.network.icmp": "network",  # a job's logger: its job's module
        "vigil.cli": "core",
        "uvicorn.error": "other",  # libraries
    }.items():
        assert real_log_line(logger)["module"] == expected, logger
    stages = [name for name, _, _ in process]
    assert stages.index("stage.static_labels") < stages.index("stage.labels")
    (default,) = blocks(process, "stage.static_labels")
    assert attr(default, "values") == {"module": "other"}
    (stamp,) = blocks(process, "stage.timestamp")
    assert attr(stamp, "source") == "ts"
    assert attr(stamp, "format") == "RFC3339"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])


def load_yaml(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OBSERVABILITY / name).read_text())
    return data


def test_loki_keeps_structured_metadata_and_alloy_pushes_to_it(
    alloy: list[tuple[str, str | None, Any]],
) -> None:
    loki = load_yaml("loki.yaml")
    assert loki["auth_enabled"] is False
    assert loki["server"]["http_listen_port"] == 3100
    (schema,) = loki["schema_config"]["configs"]
    assert (schema["store"], schema["schema"]) == ("tsdb", "v13")  # structured metadata needs both
    assert loki["limits_config"]["allow_structured_metadata"] is True
    assert loki["common"]["storage"]["filesystem"]["chunks_directory"]
    (endpoint,) = blocks(component(alloy, "loki.write", "default"), "endpoint")
    assert attr(endpoint, "url").endswith("/loki/api/v1/push")


def test_tempo_listens_where_vigil_sends_otlp() -> None:
    tempo = load_yaml("tempo.yaml")
    protocols = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert tempo["storage"]["trace"]["backend"] == "local"
    # The chart's example sends OTLP/HTTP to Tempo's 4318 (docs/observability.md).
    chart = load_chart_tool()
    endpoint = chart.CASES["full"]["config"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint.startswith("http://tempo.")
    assert endpoint.endswith(":4318")


def test_grafana_links_a_log_lines_trace_id_to_tempo() -> None:
    sources = {s["uid"]: s for s in load_yaml("grafana-datasources.yaml")["datasources"]}
    assert {sources[u]["type"] for u in sources} == {"prometheus", "loki", "tempo"}
    (derived,) = sources["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] in sources
    line = real_log_line("vigil.core.api")
    raw = json.dumps(line, default=str, ensure_ascii=False)  # as JsonFormatter writes it
    match = re.search(derived["matcherRegex"], raw)
    assert match is not None
    assert match.group(1) == line["trace_id"]
    tempo = sources["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert '{app="vigil"}' in tempo["tracesToLogsV2"]["query"]
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"


def test_the_gitops_stack_ships_this_alloy_config() -> None:
    text = (OBSERVABILITY / "config.alloy").read_text()
    # The Alloy chart passes the content through Helm's tpl: no template actions in it.
    assert "{{" not in text
    assert "}}" not in text
    app = yaml.safe_load((REPO / "deploy/argocd/monitoring/alloy.yaml").read_text())
    values = app["spec"]["source"]["helm"]["valuesObject"]
    assert values["alloy"]["configMap"]["content"] == text
    assert app["spec"]["source"]["chart"] == "alloy"
    sync = app["spec"]["syncPolicy"]["automated"]
    assert sync == {"prune": True, "selfHeal": True}


def test_the_gitops_grafana_gets_these_data_sources() -> None:
    app = yaml.safe_load((REPO / "deploy/argocd/monitoring/kube-prometheus-stack.yaml").read_text())
    extra = app["spec"]["source"]["helm"]["valuesObject"]["grafana"]["additionalDataSources"]
    sources = load_yaml("grafana-datasources.yaml")["datasources"]
    # The stack brings its own Prometheus data source (uid prometheus); Loki and Tempo as here.
    assert extra == [s for s in sources if s["type"] != "prometheus"]
    assert [s["uid"] for s in sources if s["type"] == "prometheus"] == ["prometheus"]
