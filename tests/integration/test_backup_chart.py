"""The chart's backup CronJob and Vault agent injector support, rendered offline by Helm's Go
SDK (deploy/tools/chart.py, case "backup-vault"): what the pods run, which secret files they
read and from where, and the values the schema refuses."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.support.chart import by_component, load_chart_tool, pod_spec, vigil_containers
from vigil.settings import Settings

CHART = load_chart_tool()
CASE = CHART.CASES["backup-vault"]
VAULT_PREFIX = "vault.hashicorp.com/agent-inject-secret-"


def rendered(values: dict[str, Any] = CASE) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = CHART.render(values)
    return objects


def pod_annotations(workload: dict[str, Any]) -> dict[str, str]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    annotations: dict[str, str] = spec["template"]["metadata"].get("annotations", {})
    return annotations


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_the_backup_cronjob_runs_vigil_backup_nightly_as_configured() -> None:
    cron = by_component(rendered(), "CronJob", "backup")
    assert cron["spec"]["schedule"] == "15 3 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = pod_spec(cron)
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["args"] == ["backup"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["memory"]
    env = env_of(container)
    assert env["VIGIL_BACKUP_S3_ENDPOINT_URL"] == "http://minio.storage:9000"
    assert env["VIGIL_BACKUP_S3_BUCKET"] == "vigil-backups"
    assert env["VIGIL_BACKUP_S3_PREFIX"] == "prod/"
    assert (env["VIGIL_BACKUP_KEEP_LAST"], env["VIGIL_BACKUP_KEEP_DAYS"]) == ("10", "14")
    # The dump goes to an emptyDir of its own, the only writable path besides /data and /tmp.
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {
        m["mountPath"]: m["name"] for m in container["volumeMounts"] if not m.get("readOnly")
    }
    assert set(writable) == {"/data", "/tmp", "/backup"}
    assert all("emptyDir" in volumes[name] for name in writable.values())
    assert volumes["backup"]["emptyDir"]["sizeLimit"] == "4Gi"
    assert env["VIGIL_BACKUP_DIR"] == "/backup"
    # The S3 port is open to the backup pod.
    policy = next(
        o
        for o in rendered()
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "vigil-backup"
    )
    assert policy["spec"]["egress"][0]["ports"] == [{"port": 9000, "protocol": "TCP"}]


def test_every_variable_the_chart_sets_is_a_vigil_setting() -> None:
    fields = set(Settings.model_fields)
    for _workload, container in vigil_containers(rendered()):
        for name in env_of(container):
            if name.startswith("VIGIL_"):
                assert name.removeprefix("VIGIL_").lower() in fields, name


def test_secret_files_come_from_vault_or_the_mounted_secret() -> None:
    for workload, container in vigil_containers(rendered()):
        env = env_of(container)
        annotations = pod_annotations(workload)
        assert annotations["vault.hashicorp.com/agent-inject"] == "true"
        assert annotations["vault.hashicorp.com/agent-pre-populate-only"] == "true"
        assert annotations["vault.hashicorp.com/role"] == "vigil"
        assert annotations["vault.hashicorp.com/namespace"] == "platform"
        token = annotations["vault.hashicorp.com/agent-service-account-token-volume-name"]
        assert "projected" in {v["name"]: v for v in pod_spec(workload)["volumes"]}[token]
        injected = {k.removeprefix(VAULT_PREFIX) for k in annotations if k.startswith(VAULT_PREFIX)}
        files = {k: v for k, v in env.items() if k.endswith("_FILE")}
        for name, path in files.items():
            key = name.removeprefix("VIGIL_").removesuffix("_FILE").lower().replace("_", "-")
            if path.startswith("/vault/secrets/"):
                assert path == f"/vault/secrets/{key}"
                assert key in injected
                assert annotations[f"vault.hashicorp.com/agent-inject-template-{key}"] == (
                    f'{{{{- with secret "secret/data/vigil" -}}}}'
                    f'{{{{ index .Data.data "{key}" }}}}{{{{- end -}}}}'
                )
            else:
                assert path == f"/etc/vigil/secrets/{key}"
        # Every injected key is read, and database, Redis and JWT key come from Vault.
        assert {p.removeprefix("/vault/secrets/") for p in files.values()} >= injected
        assert files["VIGIL_DATABASE_URL_FILE"] == "/vault/secrets/database-url"
        assert files["VIGIL_NETWORK_SECRET_KEY_FILE"] == "/etc/vigil/secrets/network-secret-key"
        # The S3 keys only in the backup pod.
        is_backup = workload["kind"] == "CronJob"
        assert ("backup-s3-secret-access-key" in injected) is is_backup
        assert ("VIGIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE" in env) is is_backup


def test_without_vault_extra_keys_and_the_backup_secret_are_files() -> None:
    values = CHART.CASES["external"] | {
        "secrets": {"jwtSecret": "", "existingSecret": "", "extra": {"webhooks": "[]"}},
        "backup": {"enabled": True, "s3": {"bucket": "vigil-backups", "existingSecret": "s3"}},
    }
    objects = rendered(values)
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert set(secret["data"]) == {"jwt-secret", "database-url", "redis-url", "webhooks"}
    cron = by_component(objects, "CronJob", "backup")
    (container,) = pod_spec(cron)["containers"]
    env = env_of(container)
    assert env["VIGIL_WEBHOOKS_FILE"] == "/etc/vigil/secrets/webhooks"
    assert env["VIGIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE"] == "/etc/vigil/backup-s3/secret-access-key"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/vigil/backup-s3"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod_spec(cron)["volumes"]}
    assert volumes[mounts["/etc/vigil/backup-s3"]["name"]]["secret"]["secretName"] == "s3"
    assert "vault-token" not in volumes
    assert not pod_annotations(cron)
    api = by_component(objects, "Deployment", "api")
    assert "VIGIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE" not in env_of(pod_spec(api)["containers"][0])
    assert not any(o["kind"] == "CronJob" for o in rendered(CHART.CASES["external"]))


def test_vault_can_stand_in_for_the_database_and_redis_urls() -> None:
    vault_only = {k: v for k, v in CASE.items() if k != "secrets"}
    assert by_component(rendered(vault_only), "CronJob", "backup")


BAD: dict[str, dict[str, Any]] = {
    "backup without a bucket": {"backup": {"enabled": True}},
    "bucket name not S3's": {"backup": {"enabled": True, "s3": {"bucket": "Vigil_Backups"}}},
    "schedule not cron": {"backup": {"enabled": True, "schedule": "nightly"}},
    "retention negative": {"backup": {"retention": {"keepLast": -1}}},
    "unknown backup key": {"backup": {"keep": 3}},
    "unknown vault key": {"vault": {"injector": {"keys": ["jwt_secret"]}}},
    "secretPath not KV v2": {"vault": {"injector": {"secretPath": "secret/vigil"}}},
    "unknown extra key": {"secrets": {"extraKeys": ["password"]}},
    "S3 key in config": {"config": {"VIGIL_BACKUP_S3_SECRET_ACCESS_KEY": "x"}},
    "vault token in config": {"config": {"VIGIL_VAULT_TOKEN": "x"}},
    "vault without the database": {
        "externalDatabase": {"url": ""},
        "vault": {"injector": {"enabled": True, "keys": ["redis-url"]}},
    },
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_the_schema_rejects_bad_backup_and_vault_values(name: str) -> None:
    values = CHART.CASES["external"]
    for key, value in BAD[name].items():
        values = values | {key: value}
    with pytest.raises(helm.HelmValuesError):
        CHART.render(values)
