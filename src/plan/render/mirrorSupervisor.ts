import { REGISTRY_CONFIG_DIR } from './renderRegistryConfig.js';

/** File name of the supervisor script, next to config.yml and replica.yml in the mirror's config dir. */
export const SUPERVISOR_FILE = 'mirror.sh';
/** Where the supervisor keeps its state inside the container (the proxy's pid, the gc hold). */
export const SUPERVISOR_RUN_DIR = '/tmp/lo-mirror';

/**
 * The entrypoint of a mirror's single container (docs/offline.md), a POSIX sh script run by the image's
 * /bin/sh (registry:2 is alpine; the test bed's image carries busybox). It runs two `registry serve` on the
 * one volume:
 * - the read-only replica (`replica.yml`, no proxy section): started first, never contacts the upstream, so
 *   it serves the cache offline at once; the container exits (non-zero) only when the replica dies, and
 *   Docker's restart policy brings it back.
 * - the pull-through proxy (`config.yml`) in a restart loop with back-off (the first retry at once, then 1 s
 *   doubling to 30 s; back to "at once" after a run of 30 s): registry:2 exits at start when its upstream's
 *   /v2/ does not answer; meanwhile its port refuses at once and containerd moves on to the replica's host
 *   entry. The immediate first retry keeps a one-off failure (a slow upstream under load) from closing the
 *   port for a second.
 * TERM/INT stop both. `sh mirror.sh hold` stops the proxy and keeps it stopped until `sh mirror.sh resume`
 * (`lo registry gc` sweeps the volume in between; the replica keeps serving). Pure text, no secrets.
 */
export function renderMirrorSupervisor(): string {
  const dir = REGISTRY_CONFIG_DIR;
  const run = SUPERVISOR_RUN_DIR;
  return `# lo mirror supervisor: read-only replica + pull-through proxy on one volume (docs/offline.md).
# sh mirror.sh          supervise (the container's entrypoint)
# sh mirror.sh hold     stop the proxy and keep it stopped (lo registry gc); the replica keeps serving
# sh mirror.sh resume   let the proxy start again
set -u
run=${run}
hold=$run/proxy.hold
held=$run/proxy.held
pidf=$run/proxy.pid

case "\${1:-}" in
hold)
  mkdir -p "$run"
  rm -f "$held"
  : >"$hold"
  i=0
  # Kill whatever proxy runs until the loop confirms it is holding (it may be starting one right now).
  while [ ! -e "$held" ]; do
    p=$(cat "$pidf" 2>/dev/null)
    [ -n "$p" ] && kill "$p" 2>/dev/null
    i=$((i + 1))
    if [ "$i" -gt 150 ]; then
      echo "lo: the proxy did not stop within 15 s" >&2
      exit 1
    fi
    sleep 0.1
  done
  exit 0
  ;;
resume)
  rm -f "$hold"
  exit 0
  ;;
esac

mkdir -p "$run"
rm -f "$hold" "$held" "$pidf"

# Sleeps that a signal interrupts (a foreground sleep would delay the trap up to 30 s).
nap() {
  sleep "$1" &
  s=$!
  wait "$s"
  s=
}

proxy_loop() {
  p=
  s=
  trap '[ -n "$s" ] && kill "$s" 2>/dev/null; if [ -n "$p" ]; then kill "$p" 2>/dev/null; wait "$p"; fi; exit 0' TERM INT
  delay=0
  while :; do
    if [ -e "$hold" ]; then
      : >"$held"
      nap 1
      delay=0
      continue
    fi
    rm -f "$held"
    started=$(date +%s)
    /bin/registry serve ${dir}/config.yml &
    p=$!
    echo "$p" >"$pidf"
    wait "$p"
    code=$?
    p=
    : >"$pidf"
    [ -e "$hold" ] && continue
    [ $(($(date +%s) - started)) -ge 30 ] && delay=0
    echo "lo: pull-through proxy exited ($code), restarting in \${delay}s; the read-only replica serves the cache" >&2
    # One second at a time, so a hold (gc) is seen at once.
    i=0
    while [ "$i" -lt "$delay" ] && [ ! -e "$hold" ]; do
      nap 1
      i=$((i + 1))
    done
    if [ "$delay" -eq 0 ]; then delay=1; else delay=$((delay * 2)); fi
    [ "$delay" -gt 30 ] && delay=30
  done
}

/bin/registry serve ${dir}/replica.yml &
replica=$!
proxy_loop &
loop=$!
trap 'kill "$loop" 2>/dev/null; wait "$loop"; kill "$replica" 2>/dev/null; wait "$replica"; exit 0' TERM INT
wait "$replica"
code=$?
kill "$loop" 2>/dev/null
wait "$loop"
echo "lo: the read-only replica exited ($code); stopping the mirror" >&2
[ "$code" -eq 0 ] && code=1
exit "$code"
`;
}
