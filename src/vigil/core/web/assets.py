"""Front-end files: our own (``static/``) and the third-party packages that npm installs,
copied into ``static/vendor/`` by ``make install`` (``python -m vigil.core.web.assets``).
Nothing is loaded from a CDN and nothing third-party is committed: the vendor folder is
built from ``package-lock.json``."""

from __future__ import annotations

import hashlib
import shutil
import sys
from functools import lru_cache
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"

#: Served name -> path under node_modules (the packages and versions: package.json).
VENDOR_FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "lightweight-charts.js": "lightweight-charts/dist/lightweight-charts.standalone.production.js",
    "pico.min.css": "@picocss/pico/css/pico.min.css",
}


def missing_vendor_files() -> list[str]:
    return [name for name in VENDOR_FILES if not (VENDOR_DIR / name).is_file()]


@lru_cache(maxsize=64)
def _fingerprint(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``: browsers may keep it forever, a new file gets a
    new URL."""
    path = STATIC_DIR / name
    try:
        version = _fingerprint(path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        version = "missing"
    return f"/static/{name}?v={version}"


def copy_vendor_files(node_modules: Path, target: Path = VENDOR_DIR) -> list[Path]:
    """Copies the served files out of an npm install; fails naming what is missing."""
    missing = [rel for rel in VENDOR_FILES.values() if not (node_modules / rel).is_file()]
    if missing:
        raise FileNotFoundError(
            f"not in {node_modules}: {', '.join(missing)}. Run `npm ci` in the repository first."
        )
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name, rel in VENDOR_FILES.items():
        copied.append(Path(shutil.copyfile(node_modules / rel, target / name)))
    return copied


if __name__ == "__main__":  # python -m vigil.core.web.assets [node_modules]
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "node_modules")
    try:
        files = copy_vendor_files(source)
    except FileNotFoundError as exc:
        sys.exit(str(exc))
    print(f"web assets: {len(files)} files in {VENDOR_DIR}")
