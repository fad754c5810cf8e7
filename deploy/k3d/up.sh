#!/usr/bin/env bash
# A local Kubernetes cluster running Vigil (`make k3d-up`; docs/deploy.md): creates the k3d
# cluster (or reuses it), builds the image and imports it as vigil:dev, installs the chart
# with helm and deploy/k3d/values-dev.yaml (or, without helm or with VIGIL_K3D_INSTALL=kustomize,
# applies the kustomize dev overlay: the same objects, rendered), waits for the migrations and
# the API, and prints the URL. Needs Docker, k3d and kubectl (and helm for the helm path).
# Environment: K3D_CLUSTER (vigil), K3D_HTTP_PORT (8080), VIGIL_K3D_INSTALL (auto|helm|kustomize).
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster="${K3D_CLUSTER:-vigil}"
port="${K3D_HTTP_PORT:-8080}"
install="${VIGIL_K3D_INSTALL:-auto}"
namespace="vigil-dev"
image="vigil:dev"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "up.sh: '$1' is not installed ($2)" >&2
    exit 1
  fi
}
need docker "https://docs.docker.com/engine/install/"
need k3d "https://k3d.io"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
if [ "$install" = auto ]; then
  if command -v helm >/dev/null 2>&1; then install=helm; else install=kustomize; fi
fi
case "$install" in
  helm) need helm "https://helm.sh/docs/intro/install/" ;;
  kustomize) ;;
  *) echo "up.sh: VIGIL_K3D_INSTALL must be auto, helm or kustomize, not '$install'" >&2; exit 2 ;;
esac

echo "== cluster $cluster (http://localhost:$port -> Traefik)"
if k3d cluster get "$cluster" >/dev/null 2>&1; then
  echo "reusing the existing cluster"
else
  k3d cluster create "$cluster" --agents 1 -p "${port}:80@loadbalancer" --wait
fi
kubectl config use-context "k3d-$cluster" >/dev/null

echo "== image $image"
docker build -f deploy/Dockerfile -t "$image" .
k3d image import "$image" -c "$cluster"

echo "== install ($install)"
if [ "$install" = helm ]; then
  # No --wait: with the bundled PostgreSQL the migrations are a post-install hook, and the
  # API is ready only after them; helm waits for the hook Job itself.
  helm upgrade --install vigil deploy/helm/vigil -n "$namespace" --create-namespace \
    -f deploy/k3d/values-dev.yaml --timeout 10m
else
  kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
  kubectl apply -k deploy/kustomize/overlays/dev
  kubectl -n "$namespace" wait --for=condition=complete job/vigil-migrate --timeout=300s
fi
kubectl -n "$namespace" rollout status deployment/vigil-api --timeout=300s

echo "Vigil on k3d: http://vigil.localhost:${port}/  (make k3d-down deletes the cluster)"
