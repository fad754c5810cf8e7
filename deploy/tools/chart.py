"""Renders the Helm chart offline (the real Helm Go SDK through the PyPI package
helm-python-sdk: no helm binary, no cluster) for each values combination the chart supports,
and checks it: `helm lint --strict`, and the generated kustomize base is up to date.

    python deploy/tools/chart.py check OUT_DIR   # lint + render every case into OUT_DIR
    python deploy/tools/chart.py write-kustomize # regenerate deploy/kustomize's rendered files

`make check-deploy` runs `check`, then validates what it wrote (kubernetes-validate --strict,
the CRD validators, checkov); the tests import CASES and render() from here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml  # type: ignore[import-untyped]  # (no stubs in the dev extras)

DEPLOY = Path(__file__).resolve().parents[1]
CHART = DEPLOY / "helm" / "vigil"
KUSTOMIZE = DEPLOY / "kustomize"
RELEASE = "vigil"
NAMESPACE = "vigil"

_EXTERNAL = {
    "externalDatabase": {"url": "postgresql://vigil:secret@db.example.com:5432/vigil"},
    "externalRedis": {"url": "redis://redis.example.com:6379/0"},
}

#: Every supported combination of values, by name. Each is rendered, linted and validated.
CASES: dict[str, dict[str, Any]] = {
    # Production defaults: external PostgreSQL and Redis given as URLs.
    "external": _EXTERNAL,
    # Development (k3d): the bundled PostgreSQL and Redis, one API pod, no autoscaler.
    "bundled": {
        "postgresql": {"enabled": True, "auth": {"password": "dev-password"}},
        "redis": {"enabled": True},
        "api": {"replicas": 1, "workers": 1, "autoscaling": {"enabled": False}},
        "networkPolicy": {"enabled": False},
    },
    # Everything on: an existing Secret, Ingress with TLS, Prometheus Operator objects, the
    # collect queue's worker, an image pinned by digest.
    "full": {
        "secrets": {"existingSecret": "vigil-secrets"},
        "image": {"repository": "registry.example.com/vigil", "digest": "sha256:" + "ab" * 32},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "host": "vigil.example.com",
            "tlsSecretName": "vigil-tls",
        },
        "monitoring": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "grafanaDashboards": {"enabled": True},
        },
        "workers": {"collect": {"enabled": True}},
        "config": {
            "VIGIL_LOG_LEVEL": "DEBUG",
            "VIGIL_REGISTRATION_ENABLED": "false",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://tempo.monitoring:4318",
        },
    },
    # Secrets from Vault through the agent injector (the database, Redis and JWT key among
    # them: no URL in values), more keys from the existing Secret, and the nightly backup
    # CronJob to a MinIO endpoint with its S3 keys in Vault.
    "backup-vault": {
        "secrets": {"existingSecret": "vigil-secrets", "extraKeys": ["network-secret-key"]},
        "vault": {
            "injector": {
                "enabled": True,
                "role": "vigil",
                "secretPath": "secret/data/vigil",
                "keys": [
                    "jwt-secret",
                    "database-url",
                    "redis-url",
                    "coingecko-api-key",
                    "backup-s3-access-key-id",
                    "backup-s3-secret-access-key",
                ],
                "annotations": {"vault.hashicorp.com/namespace": "platform"},
            }
        },
        "backup": {
            "enabled": True,
            "schedule": "15 3 * * *",
            "s3": {
                "endpointUrl": "http://minio.storage:9000",
                "port": 9000,
                "bucket": "vigil-backups",
                "prefix": "prod/",
            },
            "retention": {"keepLast": 10, "keepDays": 14},
        },
    },
    # Istio: sidecars, mTLS STRICT, a canary API (its own image tag) taking 10 % of the
    # traffic from the mesh and a gateway; Ingress and the collect worker on.
    "mesh-istio": _EXTERNAL
    | {
        "mesh": {
            "provider": "istio",
            "istio": {
                "gateways": ["istio-ingress/vigil"],
                "canary": {"enabled": True, "tag": "1.1.0-rc.1", "weight": 10, "replicas": 1},
            },
        },
        "ingress": {"enabled": True, "className": "istio", "host": "vigil.example.com"},
        "workers": {"collect": {"enabled": True}},
        "networkPolicy": {
            "enabled": True,
            "ingressNamespaceSelector": {"kubernetes.io/metadata.name": "istio-ingress"},
            "monitoringNamespaceSelector": {"kubernetes.io/metadata.name": "monitoring"},
            "egressCIDRs": ["0.0.0.0/0"],
        },
    },
    # Linkerd: the inject annotations and the default inbound policy.
    "mesh-linkerd": _EXTERNAL | {"mesh": {"provider": "linkerd"}},
    # What deploy/k3d/up.sh installs with helm.
    "k3d-dev": yaml.safe_load((DEPLOY / "k3d" / "values-dev.yaml").read_text()),
}

#: Values of the kustomize base (deploy/kustomize/base/vigil.yaml): the overlays provide the
#: Secret `vigil-secrets`; the Ingress host is patched per overlay.
KUSTOMIZE_BASE: dict[str, Any] = {
    "secrets": {"existingSecret": "vigil-secrets"},
    "ingress": {"enabled": True},
}
_DEV_STORES = {"postgresql": {"enabled": True, "auth": {"password": "dev-password"}}}
_MONITORING = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "grafanaDashboards": {"enabled": True},
}
#: The prod overlay's nightly backup: the bucket and the Secret with the S3 keys are the
#: operator's (documented in the overlay and docs/DISASTER_RECOVERY.md).
_PROD_BACKUP = {
    "backup": {
        "enabled": True,
        "s3": {"bucket": "vigil-backups", "existingSecret": "vigil-backup-s3"},
    }
}
_GENERATED = (
    "# Generated from deploy/helm/vigil by `python deploy/tools/chart.py write-kustomize`:"
    " do not edit.\n"
)


def render(values: dict[str, Any], *, upgrade: bool = False) -> list[dict[str, Any]]:
    """Every object the chart renders for ``values`` (schema-checked by Helm first)."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(
            values,
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=not upgrade,
            is_upgrade=upgrade,
        )
    return [
        doc
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def lint(values: dict[str, Any]) -> list[str]:
    """`helm lint --strict` findings worse than "info", as lines."""
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    findings = [f"{m['path']}: {m['error']}" for m in report["messages"] if int(m["severity"]) >= 2]
    return findings + [str(e) for e in report["errors"]]


def dump(objects: list[dict[str, Any]]) -> str:
    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objects)


def _component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def kustomize_files() -> Iterator[tuple[Path, str]]:
    """The chart renderings the kustomize overlays build on, with their expected content:
    the base, the dev overlay's PostgreSQL and Redis, the prod overlay's monitoring objects
    and its backup CronJob (with the CronJob's NetworkPolicy)."""
    base = render(KUSTOMIZE_BASE)
    yield KUSTOMIZE / "base" / "vigil.yaml", _GENERATED + dump(base)
    dev = render(KUSTOMIZE_BASE | _DEV_STORES | {"redis": {"enabled": True}})
    stores = [
        o
        for o in dev
        if _component(o) in {"postgresql", "redis"}
        or o["metadata"]["name"] == f"{RELEASE}-datastores"  # their NetworkPolicy
    ]
    yield KUSTOMIZE / "overlays" / "dev" / "datastores.yaml", _GENERATED + dump(stores)
    prod = render(KUSTOMIZE_BASE | {"monitoring": _MONITORING})
    monitoring = [
        o
        for o in prod
        if o["kind"] in {"ServiceMonitor", "PrometheusRule"}
        or _component(o) == "worker-metrics"
        or o["metadata"]["name"].startswith(f"{RELEASE}-dashboard-")
    ]
    yield KUSTOMIZE / "overlays" / "prod" / "monitoring.yaml", _GENERATED + dump(monitoring)
    with_backup = render(KUSTOMIZE_BASE | _PROD_BACKUP)
    backup = [o for o in with_backup if o["metadata"]["name"] == f"{RELEASE}-backup"]
    yield KUSTOMIZE / "overlays" / "prod" / "backup.yaml", _GENERATED + dump(backup)


def check(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for name, values in CASES.items():
        problems += [f"lint {name}: {line}" for line in lint(values)]
        for upgrade in (False, True):
            objects = render(values, upgrade=upgrade)
            suffix = "-upgrade" if upgrade else ""
            (out / f"{name}{suffix}.yaml").write_text(dump(objects))
        print(f"chart: {name}: {len(objects)} objects rendered and linted")
    for path, text in kustomize_files():
        if not path.exists() or path.read_text() != text:
            problems.append(
                f"{path.relative_to(DEPLOY.parent)} is stale: "
                "run `python deploy/tools/chart.py write-kustomize`"
            )
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


def write_kustomize() -> int:
    for path, text in kustomize_files():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(DEPLOY.parent)}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "check":
        return check(Path(argv[1]))
    if argv == ["write-kustomize"]:
        return write_kustomize()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
