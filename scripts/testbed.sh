#!/usr/bin/env bash
# Prepares this machine for lo's tests, offline: a Docker engine, Debian's registry/containerd/skopeo,
# a `registry:2` image built from Debian's docker-registry binary, containerd "node" images (1.6 from the
# machine's Debian, 1.7 and 2.1 from trixie/sid) and the real kind binary.
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
command -v curl >/dev/null || need_pkgs+=(curl)
command -v zstd >/dev/null || need_pkgs+=(zstd) # the .tar.zst fixtures of lo images load (issue 12)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  # dockerd outlives this script: it must not inherit our open descriptors beyond stdio (a caller's
  # `flock /tmp/lo-e2e.lock scripts/testbed.sh` would otherwise leave the e2e lock held by dockerd forever).
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec nohup dockerd </dev/null >/var/log/lo-dockerd.log 2>&1
  ) &
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

# registry:2 — Debian's distribution 2.8.2 binary, same entrypoint contract as the upstream image, plus a
# /bin/sh (bookworm's busybox-static) as the alpine-based upstream image has: lo's mirrors run a sh
# supervisor (docs/offline.md). REGISTRY_IMAGE_REV is bumped when what goes into the image changes, so an
# older image is rebuilt.
REGISTRY_IMAGE_REV=2
if [ "$(docker image inspect -f '{{index .Config.Labels "dev.lok8s.test.testbed-rev"}}' registry:2 2>/dev/null)" != "$REGISTRY_IMAGE_REV" ]; then
  log "building registry:2 from /usr/bin/docker-registry and busybox-static"
  root=$(mktemp -d)
  copy_with_libs "$root" /usr/bin/docker-registry /bin/registry
  bb=$(mktemp -d)
  (cd "$bb" && apt-get download -qq busybox-static 2>/dev/null && dpkg-deb -x busybox-static_*.deb x)
  cp "$bb/x/bin/busybox" "$root/bin/busybox"
  rm -rf "$bb"
  for applet in sh cat date kill mkdir rm sleep; do ln -s busybox "$root/bin/$applet"; done
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
    --change "LABEL dev.lok8s.test.testbed-rev=$REGISTRY_IMAGE_REV" \
    - registry:2 >/dev/null
  rm -rf "$root"
fi

# Node images: kind-like nodes with containerd + ctr (+ node for the P2P agent; curl and cat, as kind's node
# image has them, for `lo why`), built offline. The kind
# stand-in writes kind's real /etc/containerd/config.toml into them; that config names
# /etc/containerd/cri-base.json (kind generates it with `ctr oci spec`), without which the CRI plugin does not
# load. The pull path never reads it. NODE_IMAGE_REV is bumped when what goes into a node image changes, so
# an older image is rebuilt.
NODE_IMAGE_REV=3
CACHE=${LO_TESTBED_CACHE:-/var/cache/lo-testbed}

build_node_image() {
  local tag=$1 bindir=$2
  if [ "$(docker image inspect -f '{{index .Config.Labels "dev.lok8s.test.testbed-rev"}}' "$tag" 2>/dev/null)" = "$NODE_IMAGE_REV" ]; then
    return
  fi
  log "building $tag from $bindir/containerd ($("$bindir/containerd" --version | awk '{print $3}'))"
  local root
  root=$(mktemp -d)
  copy_with_libs "$root" "$bindir/containerd" /usr/bin/containerd
  copy_with_libs "$root" "$bindir/ctr" /usr/bin/ctr
  copy_with_libs "$root" "$(command -v node)" /usr/local/bin/node
  copy_with_libs "$root" /usr/bin/curl /usr/bin/curl
  copy_with_libs "$root" /usr/bin/cat /usr/bin/cat
  [ -x "$bindir/containerd-shim-runc-v2" ] && copy_with_libs "$root" "$bindir/containerd-shim-runc-v2" /usr/bin/containerd-shim-runc-v2
  mkdir -p "$root/etc/containerd/certs.d" "$root/var/lib/containerd" "$root/run/containerd" "$root/tmp" "$root/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
  "$bindir/ctr" oci spec >"$root/etc/containerd/cri-base.json"
  cat >"$root/etc/containerd/config.toml" <<'TOML'
version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
TOML
  tar -C "$root" -c . | docker import \
    --change 'ENTRYPOINT ["/usr/bin/containerd"]' \
    --change 'CMD ["--config", "/etc/containerd/config.toml"]' \
    --change "LABEL dev.lok8s.test.testbed-rev=$NODE_IMAGE_REV" \
    - "$tag" >/dev/null
  rm -rf "$root"
}

# containerd 1.7 (trixie), 2.1 (sid, what kind v0.30 nodes run) and kind 0.33 (sid, for its strict config
# decoder) come from Debian's archive through a private apt configuration: the machine's own sources stay as
# they are. The host is the one the machine's sources already use. Downloads are kept under $CACHE.
APT_DIR=$CACHE/apt
apt_private() {
  apt-get -q -o Dir::Etc::SourceList="$APT_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR/cache" "$@"
}
fetch_deb() { # fetch_deb PACKAGE VERSION -> prints the directory the .deb was extracted to
  local pkg=$1 version=$2 dir="$APT_DIR/x/$1_$2"
  if [ ! -f "$dir/.done" ]; then
    if [ ! -f "$APT_DIR/lists/.updated" ]; then
      local host
      host=$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+/debian$|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+/debian[[:space:]]' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -oE '[a-z]+://[^[:space:]]+/debian' | head -1 || true)
      [ -n "$host" ] || { log "no Debian archive found in /etc/apt/sources.list*; cannot fetch containerd $version"; exit 1; }
      mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/debs"
      {
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $host trixie main"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $host sid main"
      } >"$APT_DIR/sources.list"
      log "apt-get update (private lists for trixie and sid in $APT_DIR)"
      apt_private update >/dev/null
      touch "$APT_DIR/lists/.updated"
    fi
    local deb
    deb=$(ls "$APT_DIR/debs/${pkg}_${version//:/%3a}"_*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
      log "downloading $pkg=$version"
      (cd "$APT_DIR/debs" && apt_private download "$pkg=$version" >/dev/null 2>&1) ||
        { log "apt-get download $pkg=$version failed"; exit 1; }
      deb=$(ls "$APT_DIR/debs/${pkg}_"*.deb | grep -F "${version//:/%3a}" | head -1)
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    dpkg -x "$deb" "$dir"
    touch "$dir/.done"
  fi
  echo "$dir"
}

build_node_image lo-test/node:containerd /usr/bin
build_node_image lo-test/node:containerd-1.7 "$(fetch_deb containerd 1.7.24~ds1-6+deb13u1)/usr/bin"
build_node_image lo-test/node:containerd-2.1 "$(fetch_deb containerd 2.1.9+ds1-5)/usr/bin"

# The real kind, kept off PATH (tests put the stand-in first): test/unit/kindStrict.test.ts runs its decoder.
if [ ! -x "$CACHE/bin/kind" ]; then
  mkdir -p "$CACHE/bin"
  cp "$(fetch_deb kind 0.33.0-1)/usr/bin/kind" "$CACHE/bin/kind"
fi
log "ready: $(docker version --format '{{.Server.Version}}') with registry:2, lo-test/node:containerd{,-1.7,-2.1} and $CACHE/bin/kind"
