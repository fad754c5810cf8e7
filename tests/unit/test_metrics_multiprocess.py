"""The multiprocess directory of ``vigil api --workers N``: ours is new and removed at the end;
the operator's is kept but emptied of a previous run's files first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vigil.core.metrics import MULTIPROC_DIR_ENV, multiprocess_metrics


def test_without_the_variable_a_private_directory_lives_for_the_block(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    with multiprocess_metrics() as path:
        assert path.parent == tmp_path
        assert path.is_dir()
        assert list(path.iterdir()) == []
        assert os.environ[MULTIPROC_DIR_ENV] == str(path)
        (path / "counter_123.db").write_bytes(b"x")
    assert not path.exists()
    assert MULTIPROC_DIR_ENV not in os.environ


def test_the_operators_directory_is_kept_and_emptied_of_stale_samples(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_99.db").write_bytes(b"old counts")
    (given / "histogram_99.db").write_bytes(b"old counts")
    (given / "README").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(given))
    with multiprocess_metrics() as path:
        assert path == given
        assert sorted(p.name for p in path.iterdir()) == ["README"]
        assert os.environ[MULTIPROC_DIR_ENV] == str(given)
    assert given.is_dir()
    assert os.environ[MULTIPROC_DIR_ENV] == str(given)


def test_the_operators_directory_is_created_when_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    given = tmp_path / "missing" / "prom"
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(given))
    with multiprocess_metrics() as path:
        assert path.is_dir()
    assert given.is_dir()
