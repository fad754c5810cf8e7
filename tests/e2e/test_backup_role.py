"""The chart's backup CronJob run for real without a cluster: its container's args and env
exactly as rendered (case "backup-vault"; mounted paths mapped to temporary directories, the
Vault agent's /vault/secrets written as its templates would, bare values), against a migrated
throwaway PostgreSQL database and moto's S3 server on loopback. The dump lands under the
configured prefix and restores into a fresh database with the same row counts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import throwaway_postgres
from tests.e2e.conftest import Backend
from tests.e2e.test_chart_roles import Role
from tests.integration.test_backup import fill, row_counts
from tests.support.chart import by_component, load_chart_tool, pod_spec
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, keys, moto_s3, s3_client
from vigil.core import backup
from vigil.settings import Settings

pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
pytestmark = pytest.mark.e2e

CHART = load_chart_tool()


def test_the_backup_cronjob_container_dumps_to_s3(postgres: Backend, tmp_path: Path) -> None:
    with moto_s3(tmp_path) as endpoint:
        s3_client(endpoint).create_bucket(Bucket="vigil-backups")
        values = copy.deepcopy(CHART.CASES["backup-vault"])
        values["backup"]["s3"]["endpointUrl"] = endpoint
        cron = by_component(CHART.render(values), "CronJob", "backup")
        (container,) = pod_spec(cron)["containers"]
        role = Role(cron, container, tmp_path / "pods")
        # The Vault agent's init container writes one bare value per key to /vault/secrets.
        agent = tmp_path / "vault-secrets"
        agent.mkdir()
        role.mounts["/vault/secrets"] = agent
        injected = {
            "database-url": postgres.env_url,
            "redis-url": "",
            "jwt-secret": "j" * 48,
            "coingecko-api-key": "cg",
            "backup-s3-access-key-id": ACCESS_KEY,
            "backup-s3-secret-access-key": SECRET_KEY,
        }
        for key, value in injected.items():
            (agent / key).write_text(value)
        role.write_secrets({"network-secret-key": "n" * 40})
        fill(postgres.sqlalchemy_url)
        before = row_counts(postgres.sqlalchemy_url)

        done = role.run()
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stderr.splitlines()]  # the chart's JSON logs
        assert lines[-1]["msg"].startswith("backup: done: prod/vigil-")
        (key,) = keys(endpoint, "vigil-backups")
        assert key.startswith("prod/vigil-")
        # The dump is a real one: restore it and compare.
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            backup_s3_endpoint_url=endpoint,
            backup_s3_bucket="vigil-backups",
            backup_s3_prefix="prod/",
            backup_s3_access_key_id=ACCESS_KEY,
            backup_s3_secret_access_key=SECRET_KEY,
        )
        with throwaway_postgres("vigil_e2e_restore") as fresh:
            assert backup.run_restore(settings, fresh, lambda _line: None) == key
            assert row_counts(fresh) == before
