#!/usr/bin/env bash
# Prepares this machine for lo's tests, offline: a Docker engine, Debian's registry/containerd/skopeo,
# a `registry:2` image built from Debian's docker-registry binary, and a containerd "node" image.
# Idempotent: re-running only does what is missing. Needs root (apt-get, dockerd).
set -euo pipefail

log() { printf '[testbed] %s\n' "$*" >&2; }

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v containerd >/dev/null || need_pkgs+=(containerd)
[ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
command -v skopeo >/dev/null || need_pkgs+=(skopeo)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v openssl >/dev/null || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  # setsid, stdin and fds 3-9 closed: dockerd must not inherit a caller's lock (flock) or pipes.
  setsid nohup dockerd >/var/log/lo-dockerd.log 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/lo-dockerd.log"; tail -20 /var/log/lo-dockerd.log >&2; exit 1; }
fi

# Copies a dynamically linked binary and the libraries ldd lists into a root directory.
copy_with_libs() {
  local root=$1 bin=$2 dest=$3
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$bin" "$root$dest"
  ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# registry:2 — Debian's distribution 2.8.2 binary, same entrypoint contract as the upstream image.
if ! image_exists registry:2; then
  log "building registry:2 from /usr/bin/docker-registry"
  root=$(mktemp -d)
  copy_with_libs "$root" /usr/bin/docker-registry /bin/registry
  mkdir -p "$root/etc/docker/registry" "$root/var/lib/registry" "$root/etc/ssl/certs" "$root/tmp"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
  cat >"$root/etc/docker/registry/config.yml" <<'YML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YML
  tar -C "$root" -c . | docker import \
    --change 'ENTRYPOINT ["/bin/registry", "serve"]' \
    --change 'CMD ["/etc/docker/registry/config.yml"]' \
    --change 'EXPOSE 5000' \
    --change 'VOLUME ["/var/lib/registry"]' \
    - registry:2 >/dev/null
  rm -rf "$root"
fi

# lo-test/node — a kind-like node: containerd + ctr (+ node for the P2P agent), built offline.
if ! image_exists lo-test/node:containerd; then
  log "building lo-test/node:containerd from Debian's containerd"
  root=$(mktemp -d)
  copy_with_libs "$root" /usr/bin/containerd /usr/bin/containerd
  copy_with_libs "$root" /usr/bin/ctr /usr/bin/ctr
  copy_with_libs "$root" "$(command -v node)" /usr/local/bin/node
  [ -x /usr/bin/containerd-shim-runc-v2 ] && copy_with_libs "$root" /usr/bin/containerd-shim-runc-v2 /usr/bin/containerd-shim-runc-v2
  mkdir -p "$root/etc/containerd/certs.d" "$root/var/lib/containerd" "$root/run/containerd" "$root/tmp" "$root/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
  cat >"$root/etc/containerd/config.toml" <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
TOML
  tar -C "$root" -c . | docker import \
    --change 'ENTRYPOINT ["/usr/bin/containerd"]' \
    --change 'CMD ["--config", "/etc/containerd/config.toml"]' \
    - lo-test/node:containerd >/dev/null
  rm -rf "$root"
fi
log "ready: $(docker version --format '{{.Server.Version}}') with registry:2 and lo-test/node:containerd"
