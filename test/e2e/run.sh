#!/usr/bin/env bash
# End-to-end tests against real services (`npm run test:e2e`).
#
#   bash test/e2e/run.sh                  install what is missing, start services, run test/e2e/*.e2e.ts
#   bash test/e2e/run.sh FILE...          the same for the given test files only
#   bash test/e2e/run.sh --deps           only install the Debian packages (what .ci/run calls)
#   bash test/e2e/run.sh --services       install and start services, run no test (for poking around)
#   bash test/e2e/run.sh --cleanup        remove leftover namespaces and test containers
#
# Needs root on Debian 12. A service that cannot be provided fails the run: nothing is skipped.
# Idempotent: installed packages are not reinstalled and a Docker daemon that already answers is reused.
# A dockerd this script starts keeps running after it (next runs are fast); its log is in $LOG_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
LOG_DIR=${OUTPOST_E2E_LOG_DIR:-/var/log/outpost-e2e}
BUSYBOX_IMAGE=outpost-e2e/busybox:latest
PACKAGES=(
  iproute2 iptables iputils-ping curl ca-certificates
  docker.io busybox-static
  chromium
  prometheus prometheus-blackbox-exporter
  pdns-server pdns-backend-sqlite3 dnsutils sqlite3
  shellcheck systemd
  redis-server
  postgresql
)

section() { printf '\n==== e2e: %s ====\n' "$*"; }
die() {
  printf 'e2e: FAILED: %s\n' "$*" >&2
  exit 1
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root: the tests create network namespaces and talk to Docker"
}

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || printf '%s\n' "$p"
  done
}

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "all ${#PACKAGES[@]} packages present"
    return
  fi
  echo "installing: ${missing[*]}"
  # Package scripts must not start daemons (pdns on :53, dockerd with defaults): this script starts what it needs.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs on the machine may hold the dpkg lock for a while; wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=600 -qq update
  apt-get -o DPkg::Lock::Timeout=600 -y -qq install --no-install-recommends "${missing[@]}" </dev/null
  if [ "$own_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  mapfile -t missing < <(missing_packages)
  [ "${#missing[@]}" -eq 0 ] || die "packages still missing after apt-get install: ${missing[*]}"
}

docker_answers() {
  timeout 10 docker info >/dev/null 2>&1
}

# Proves the daemon can really run a container, not just answer: images come from busybox-static, no registry.
docker_runs_containers() {
  if ! docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
    local rootfs applet
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs/bin" "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in sh true sleep echo cat ls wget nc httpd env ps kill; do ln -s busybox "$rootfs/bin/$applet"; done
    tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - "$BUSYBOX_IMAGE" >/dev/null
    rm -rf "$rootfs"
  fi
  timeout 60 docker run --rm --label "outpost-test=$$" "$BUSYBOX_IMAGE" /bin/true
}

# Starts "$@" in the background in a session of its own, holding no descriptor but 0-2. Run as
# `flock /tmp/outpost-e2e.lock bash test/e2e/run.sh`, a daemon that inherited the lock's descriptor
# would hold the lock, and keep every other e2e run waiting, for as long as it lives.
spawn_daemon() {
  local log=$1 fd
  shift
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec ${fd}>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >"$log" 2>&1
  ) &
}

start_dockerd() {
  if docker_answers; then
    echo "reusing the Docker daemon that already answers"
    docker_runs_containers || die "the running Docker daemon cannot run a container (see its log)"
    return
  fi
  mkdir -p "$LOG_DIR"
  local variant pid i
  # Sandboxes differ: overlayfs or iptables may be unavailable. First variant that runs a container wins.
  for variant in "" "--iptables=false" "--iptables=false --storage-driver=vfs"; do
    echo "starting dockerd ${variant:-(defaults)}; log: $LOG_DIR/dockerd.log"
    # shellcheck disable=SC2086 # variant holds separate flags on purpose
    spawn_daemon "$LOG_DIR/dockerd.log" dockerd $variant
    pid=$!
    for i in $(seq 60); do
      if docker_answers; then break; fi
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      sleep 1
    done
    if docker_answers && docker_runs_containers; then
      echo "dockerd up (pid $pid) after ${i}s ${variant:+with $variant}"
      return
    fi
    echo "dockerd ${variant:-(defaults)} did not work here; log tail:"
    tail -n 15 "$LOG_DIR/dockerd.log" || true
    kill "$pid" 2>/dev/null || true
    for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f /var/run/docker.pid
  done
  die "Docker did not come up within 60 s with any variant; last log lines above ($LOG_DIR/dockerd.log)"
}

check_tools() {
  local t
  for t in ip iptables ping docker busybox chromium promtool prometheus-blackbox-exporter pdns_server sqlite3 dig shellcheck systemd-analyze curl; do
    command -v "$t" >/dev/null || die "$t not found on PATH after installing packages"
  done
  # PostgreSQL's server programs are not on PATH in Debian's package: the tests find them there.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || die "initdb not found under /usr/lib/postgresql/*/bin after installing postgresql"
  id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package creates it; the test servers run as it)"
  timeout 60 chromium --headless --no-sandbox --disable-gpu --dump-dom 'data:text/html,<p>ok</p>' 2>/dev/null | grep -q '<p>ok</p>' ||
    die "chromium cannot render a page headless"
  timeout 10 promtool --version >/dev/null 2>&1 || die "promtool does not run"
}

cleanup() {
  if command -v docker >/dev/null && docker_answers; then
    # Label value = pid of the test process that made the container; a live owner (another run) keeps it.
    local id owner
    while read -r id owner; do
      [ -n "$id" ] || continue
      if [[ "$owner" =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
      docker rm -f "$id" >/dev/null 2>&1 || true
    done < <(docker ps -a --filter label=outpost-test --format '{{.ID}} {{.Label "outpost-test"}}' 2>/dev/null || true)
  fi
  # Networks whose owner process is gone: everything a finished or crashed test left behind.
  node --import tsx test/e2e/lib/cleanup-cli.ts || true
}

main() {
  local mode=run files=()
  case "${1:-}" in
    --deps) mode=deps ;;
    --services) mode=services ;;
    --cleanup) mode=cleanup ;;
    -h | --help)
      sed -n '2,11p' "$0"
      return
      ;;
    *) files=("$@") ;;
  esac
  require_root
  if [ "$mode" = cleanup ]; then
    cleanup
    return
  fi

  section "Debian packages"
  install_packages
  [ "$mode" = deps ] && return

  section "services"
  check_tools
  start_dockerd
  trap cleanup EXIT
  cleanup
  [ "$mode" = services ] && return

  export OUTPOST_E2E=1
  export CHROMIUM=${CHROMIUM:-$(command -v chromium)}
  export PROMTOOL=${PROMTOOL:-$(command -v promtool)}
  export BLACKBOX_EXPORTER=${BLACKBOX_EXPORTER:-$(command -v prometheus-blackbox-exporter)}
  export PDNS_SERVER=${PDNS_SERVER:-$(command -v pdns_server)}
  export OUTPOST_E2E_BUSYBOX_IMAGE=$BUSYBOX_IMAGE
  export OUTPOST_LOG_LEVEL=${OUTPOST_LOG_LEVEL:-warn}

  if [ "${#files[@]}" -eq 0 ]; then
    shopt -s nullglob
    files=(test/e2e/*.e2e.ts)
    [ "${#files[@]}" -gt 0 ] || die "no test/e2e/*.e2e.ts files"
  fi
  section "tests: ${files[*]}"
  node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
}

main "$@"
