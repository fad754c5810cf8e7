#!/usr/bin/env bash
# Deletes the k3d cluster made by up.sh (`make k3d-down`), with everything in it.
set -euo pipefail
cluster="${K3D_CLUSTER:-vigil}"
if ! command -v k3d >/dev/null 2>&1; then
  echo "down.sh: 'k3d' is not installed (https://k3d.io)" >&2
  exit 1
fi
k3d cluster delete "$cluster"
