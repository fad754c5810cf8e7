"""The GitOps hand-off: sets the image tag a kustomize overlay deploys, leaving the rest of
the file (comments included) as it is. CI's gitops job runs it after pushing an image; ArgoCD
syncs the change.

    python deploy/tools/bump_image.py deploy/kustomize/overlays/prod/kustomization.yaml TAG
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: An OCI tag: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_NAME = "vigil"


def bump(text: str, tag: str, name: str = IMAGE_NAME) -> str:
    """``text`` with the ``newTag`` of the ``images`` entry named ``name`` set to ``tag``."""
    if not TAG.match(tag):
        raise ValueError(f"{tag!r} is not an image tag")
    entry = re.compile(
        rf"(^  - name: {re.escape(name)}\n(?:    (?!newTag:).*\n)*?    newTag: )(\S+)$",
        re.MULTILINE,
    )
    new, count = entry.subn(lambda m: m.group(1) + tag, text)
    if count != 1:
        raise ValueError(f"no single images entry named {name!r} with a newTag")
    return new


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(bump(path.read_text(), argv[1]))
    print(f"{path}: {IMAGE_NAME} -> {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
