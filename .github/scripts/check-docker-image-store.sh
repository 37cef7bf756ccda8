#!/usr/bin/env bash
# Fails unless the Docker engine uses the classic image store, which pushes Docker v2 schema 2
# manifests. The containerd image store pushes OCI manifests, and SageMaker refuses to pull those
# ("Unsupported manifest media type application/vnd.oci.image.manifest.v1+json"). docs/deploy.md.
set -euo pipefail
status="$(docker info --format '{{json .DriverStatus}}')" || { echo "::error::docker info failed: is the Docker engine running?" >&2; exit 2; }
if grep -q 'io.containerd.snapshotter' <<<"$status"; then
  cat >&2 <<'MSG'
::error::The Docker engine uses the containerd image store, which pushes OCI manifests; SageMaker rejects them.
Switch it off before building the runtime image: set {"features": {"containerd-snapshotter": false}} in
/etc/docker/daemon.json and restart Docker (Docker Desktop: Settings > General > "Use containerd for pulling
and storing images"). See docs/deploy.md "SageMaker rejects OCI manifests".
MSG
  exit 1
fi
echo "Docker image store: classic ($(docker info --format '{{.Driver}}')); pushes Docker v2 schema 2 manifests"
