#!/usr/bin/env bash
# Installs the Outpost agent on this node, enrolls it with a controller and runs it under systemd.
#
#   sudo scripts/install-agent.sh --controller https://outpost.example.net --token opj_...
#   sudo scripts/install-agent.sh --uninstall
#
# Sources come from the directory this script sits in (a git checkout or an unpacked release
# tarball): its parent holds package.json, agent/, controller/, runtime/, plugins/ ... Production npm
# dependencies are installed from the npm registry (or npm's cache) with `npm ci --omit=dev`, then the
# sources are transpiled to app/dist/ (`npm run build`): the agent runs that with plain `node` and lean
# V8 flags, not through tsx (docs/benchmarks.md, agent-footprint).
#
# Layout under PREFIX (default /opt/outpost):
#   app/            the runtime files, node_modules and dist/ (root-owned, read-only for the agent)
#   bin/            outpost (CLI) and outpost-agent (runs the agent with etc/agent.json)
#   etc/agent.json  agent config (kept across re-runs; flags given again update it)
#   var/agent/      state dir: credential (0600), outbox, plugin stores (owned by the service user)
# plus /etc/systemd/system/outpost-agent.service unless --no-systemd.
#
# Running it again is safe: unchanged sources are not reinstalled, an enrolled node is not enrolled
# again, the unit is rewritten and (re)started only when something changed.
set -euo pipefail

readonly UNIT_NAME=outpost-agent.service
readonly UNIT_DIR=/etc/systemd/system
readonly MARKER=.outpost-install
readonly MIN_NODE_MAJOR=20
readonly MIN_GLIBC=2.27
# Memory-lean V8 flags for a mostly idle agent; the same as ExecStart in scripts/systemd/outpost-agent.service.
readonly AGENT_NODE_FLAGS="--max-semi-space-size=1 --no-opt --optimize-for-size"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/outpost
CONTROLLER=""
TOKEN=${OUTPOST_JOIN_TOKEN:-}
NAME=""
LABELS=""
PORT=""
SERVICE_USER=outpost
USE_SYSTEMD=1
UNINSTALL=0
# Set during install: what changed on this run decides whether a running agent is restarted.
CHANGED_APP=0
CHANGED_CONFIG=0

usage() {
  cat <<'EOF'
usage: install-agent.sh --controller URL --token T [options]
       install-agent.sh --uninstall [--prefix DIR]

  --controller URL   controller base URL, http(s)://host:port
  --token T          one-use join token from `outpost token create` (or env OUTPOST_JOIN_TOKEN,
                     which keeps it out of the process list); not needed once the node is enrolled
  --prefix DIR       install directory (default /opt/outpost)
  --name N           node name (default: the host name)
  --labels k=v,...   node labels, e.g. region=eu-west,isp=CT
  --port N           agent local API port (default 7071)
  --user U           service user to create and run as (default outpost)
  --no-systemd       install and enroll only; start PREFIX/bin/outpost-agent yourself
  --uninstall        stop and remove the unit, PREFIX (credential included) and the user it created
  -h, --help         this help
EOF
}

say() { printf 'install-agent: %s\n' "$*"; }
fail() {
  printf 'install-agent: error: %s\n' "$*" >&2
  exit 1
}
usage_error() {
  printf 'install-agent: error: %s\n(see --help)\n' "$*" >&2
  exit 2
}

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then usage_error "$1 needs a value"; fi
}

parse_args() {
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --controller) need_value "$@"; CONTROLLER=$2; shift 2 ;;
      --token) need_value "$@"; TOKEN=$2; shift 2 ;;
      --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
      --name) need_value "$@"; NAME=$2; shift 2 ;;
      --labels) need_value "$@"; LABELS=$2; shift 2 ;;
      --port) need_value "$@"; PORT=$2; shift 2 ;;
      --user) need_value "$@"; SERVICE_USER=$2; shift 2 ;;
      --no-systemd) USE_SYSTEMD=0; shift ;;
      --uninstall) UNINSTALL=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown option \"$1\"" ;;
    esac
  done
  case "$PREFIX" in
    /*) ;;
    *) usage_error "--prefix must be an absolute path, got \"$PREFIX\"" ;;
  esac
  PREFIX=${PREFIX%/}
  case "$PREFIX" in
    "" | /usr | /usr/local | /etc | /var | /opt | /home | /root | /tmp | /bin | /sbin | /lib) usage_error "--prefix $PREFIX/ is a system directory; use a directory of its own such as /opt/outpost" ;;
  esac
  [[ "$SERVICE_USER" =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || usage_error "--user must be a valid user name, got \"$SERVICE_USER\""
  [ "$UNINSTALL" -eq 1 ] && return
  [ -n "$CONTROLLER" ] || usage_error "--controller URL is required"
  [[ "$CONTROLLER" =~ ^https?://[^/[:space:]]+/?$ ]] || usage_error "--controller must be an http(s)://host[:port] URL, got \"$CONTROLLER\""
  CONTROLLER=${CONTROLLER%/}
  if [ -n "$TOKEN" ] && ! [[ "$TOKEN" =~ ^opj_[0-9a-f]{12}\.[A-Za-z0-9_-]+$ ]]; then
    usage_error "--token does not look like a join token (opj_<id>.<secret>, from \`outpost token create\`)"
  fi
  if [ -n "$PORT" ] && ! { [[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ]; }; then
    usage_error "--port must be 1..65535, got \"$PORT\""
  fi
  if [ -n "$LABELS" ] && ! [[ "$LABELS" =~ ^[A-Za-z0-9._/-]+=[^,=]*(,[A-Za-z0-9._/-]+=[^,=]*)*$ ]]; then
    usage_error "--labels must be k=v pairs separated by commas, got \"$LABELS\""
  fi
}

# ---------------------------------------------------------------- prerequisites

NODE_BIN=""
check_node() {
  NODE_BIN=$(command -v node || true)
  [ -n "$NODE_BIN" ] || fail "Node.js >= $MIN_NODE_MAJOR is required and \`node\` is not on PATH (Debian: install nodejs 20 from NodeSource or your distribution)"
  NODE_BIN=$(readlink -f "$NODE_BIN")
  local version major
  version=$("$NODE_BIN" -p 'process.versions.node')
  major=${version%%.*}
  [ "$major" -ge "$MIN_NODE_MAJOR" ] || fail "Node.js >= $MIN_NODE_MAJOR is required, found $version at $NODE_BIN"
  command -v npm >/dev/null || fail "npm is required (it comes with Node.js) and is not on PATH"
  say "node $version at $NODE_BIN"
}

version_ge() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

check_glibc() {
  local found=""
  if found=$(getconf GNU_LIBC_VERSION 2>/dev/null); then
    found=${found##* }
  else
    found=$(ldd --version 2>&1 | head -n1 | grep -oE '[0-9]+\.[0-9]+$' || true)
  fi
  [ -n "$found" ] || fail "glibc >= $MIN_GLIBC is required (the uWebSockets.js binaries link against it); no glibc found (musl/Alpine is not supported)"
  version_ge "$found" "$MIN_GLIBC" || fail "glibc >= $MIN_GLIBC is required (the uWebSockets.js binaries link against it), found $found"
  say "glibc $found"
}

# The port is free, or held by this installation's own agent (a re-run).
check_port() {
  command -v ss >/dev/null || fail "ss (iproute2) is required to check the agent port"
  local listeners pid
  listeners=$(ss -Hltnp "sport = :$PORT" 2>/dev/null || true)
  [ -z "$listeners" ] && { say "port $PORT is free"; return; }
  pid=$(printf '%s\n' "$listeners" | grep -oE 'pid=[0-9]+' | head -n1 | cut -d= -f2 || true)
  if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$PREFIX/etc/agent.json"; then
    say "port $PORT is used by this installation's agent (pid $pid)"
    return
  fi
  fail "port $PORT is already in use ($(printf '%s' "$listeners" | grep -oE 'users:\(\("[^"]+"' | head -n1 | cut -d'"' -f2 || echo unknown process)); stop that service or choose another with --port"
}

check_source() {
  local f
  for f in package.json package-lock.json agent/main.ts scripts/outpost.mjs scripts/cli/build.mjs; do
    [ -f "$SRC/$f" ] || fail "$SRC does not look like an Outpost checkout or release (package.json, agent/, scripts/outpost.mjs); run the script from inside one"
  done
}

check_prefix() {
  if [ -d "$PREFIX" ] && [ ! -f "$PREFIX/$MARKER" ] && [ -n "$(ls -A "$PREFIX")" ]; then
    fail "$PREFIX exists, is not empty and is not an Outpost install; choose another --prefix"
  fi
}

# ---------------------------------------------------------------- install

RUNTIME_PATHS=(agent controller runtime plugins configs scripts/outpost.ts scripts/outpost.mjs scripts/cli package.json package-lock.json)

source_fingerprint() {
  (cd "$SRC" && find "${RUNTIME_PATHS[@]}" -type f -not -path '*/node_modules/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

install_files() {
  mkdir -p "$PREFIX/bin" "$PREFIX/etc" "$PREFIX/var/agent"
  touch "$PREFIX/$MARKER"
  local fp
  fp=$(source_fingerprint)
  if [ -f "$PREFIX/app/.source-sha256" ] && [ "$(cat "$PREFIX/app/.source-sha256")" = "$fp" ] && [ -d "$PREFIX/app/node_modules" ] && [ -f "$PREFIX/app/dist/scripts/outpost.js" ]; then
    say "runtime files up to date in $PREFIX/app"
    CHANGED_APP=0
    return
  fi
  say "copying runtime files from $SRC"
  rm -rf "$PREFIX/app.new"
  mkdir -p "$PREFIX/app.new"
  (cd "$SRC" && tar --exclude=node_modules -cf - "${RUNTIME_PATHS[@]}") | tar -C "$PREFIX/app.new" -xf -
  say "installing production dependencies (npm ci --omit=dev)"
  if ! (cd "$PREFIX/app.new" && npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error >"$PREFIX/app.new/.npm-ci.log" 2>&1); then
    tail -n 20 "$PREFIX/app.new/.npm-ci.log" >&2 || true
    fail "npm ci failed (log above; the previous install, if any, is untouched)"
  fi
  say "building dist/ (npm run build)"
  if ! (cd "$PREFIX/app.new" && npm run --silent build >"$PREFIX/app.new/.build.log" 2>&1); then
    tail -n 20 "$PREFIX/app.new/.build.log" >&2 || true
    fail "npm run build failed (log above; the previous install, if any, is untouched)"
  fi
  printf '%s\n' "$fp" >"$PREFIX/app.new/.source-sha256"
  # Swap in one rename so a running agent never sees half an upgrade on disk.
  rm -rf "$PREFIX/app.old"
  [ -d "$PREFIX/app" ] && mv "$PREFIX/app" "$PREFIX/app.old"
  mv "$PREFIX/app.new" "$PREFIX/app"
  rm -rf "$PREFIX/app.old"
  chmod -R go-w "$PREFIX/app"
  CHANGED_APP=1
}

install_wrappers() {
  cat >"$PREFIX/bin/outpost" <<EOF
#!/bin/sh
# Outpost CLI of the agent installed in $PREFIX.
exec "$NODE_BIN" "$PREFIX/app/dist/scripts/outpost.js" "\$@"
EOF
  cat >"$PREFIX/bin/outpost-agent" <<EOF
#!/bin/sh
# Runs the agent installed in $PREFIX (what the systemd unit runs).
exec "$NODE_BIN" $AGENT_NODE_FLAGS "$PREFIX/app/dist/scripts/outpost.js" agent --config "$PREFIX/etc/agent.json" "\$@"
EOF
  chmod 755 "$PREFIX/bin/outpost" "$PREFIX/bin/outpost-agent"
}

# Creates etc/agent.json, or updates the fields given on this run; other edits are kept.
write_config() {
  local existed=0
  [ -f "$PREFIX/etc/agent.json" ] && existed=1
  # shellcheck disable=SC2016 # the single-quoted text is JavaScript; ${} in it is a JS template
  OP_FILE="$PREFIX/etc/agent.json" OP_CONTROLLER="$CONTROLLER" OP_NAME="$NAME" OP_LABELS="$LABELS" OP_PORT="$PORT" OP_DATA="$PREFIX/var/agent" \
    "$NODE_BIN" -e '
      const fs = require("node:fs");
      const e = process.env;
      let c = {};
      try { c = JSON.parse(fs.readFileSync(e.OP_FILE, "utf8")); } catch (err) { if (err.code !== "ENOENT") { console.error(`${e.OP_FILE}: ${err.message}`); process.exit(1); } }
      c.controller = e.OP_CONTROLLER;
      if (e.OP_NAME) c.name = e.OP_NAME;
      if (e.OP_LABELS) c.labels = Object.fromEntries(e.OP_LABELS.split(",").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      c.labels ??= {};
      c.host ??= "0.0.0.0";
      if (e.OP_PORT) c.port = Number(e.OP_PORT);
      c.port ??= 7071;
      c.dataDir = e.OP_DATA;
      c.plugins ??= { "server-stats": {} };
      const tmp = `${e.OP_FILE}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(c, null, 2) + "\n", { mode: 0o640 });
      fs.renameSync(tmp, e.OP_FILE);
      process.stdout.write(String(c.port));
    ' >"$PREFIX/etc/.port"
  PORT=$(cat "$PREFIX/etc/.port")
  rm -f "$PREFIX/etc/.port"
  if [ "$existed" -eq 1 ]; then say "updated $PREFIX/etc/agent.json"; else say "wrote $PREFIX/etc/agent.json"; fi
}

# The port to check before anything is written: the flag, else the existing config's, else 7071.
effective_port() {
  [ -n "$PORT" ] && { printf '%s' "$PORT"; return; }
  if [ -f "$PREFIX/etc/agent.json" ]; then
    OP_FILE="$PREFIX/etc/agent.json" "$NODE_BIN" -e 'try { process.stdout.write(String(JSON.parse(require("node:fs").readFileSync(process.env.OP_FILE, "utf8")).port ?? 7071)); } catch { process.stdout.write("7071"); }'
    return
  fi
  printf '7071'
}

ensure_user() {
  if [ "$(id -u)" -ne 0 ]; then
    SERVICE_USER=$(id -un)
    say "not root: the agent runs as $SERVICE_USER"
    return
  fi
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    say "service user $SERVICE_USER exists"
  else
    command -v useradd >/dev/null || fail "useradd is required to create the service user $SERVICE_USER"
    useradd --system --user-group --home-dir "$PREFIX/var" --no-create-home --shell /usr/sbin/nologin --comment "Outpost agent" "$SERVICE_USER"
    printf '%s\n' "$SERVICE_USER" >"$PREFIX/etc/.created-user"
    say "created system user $SERVICE_USER"
  fi
  # Docker group membership is root-equivalent on the host: it is what app-store needs, nothing else does.
  if getent group docker >/dev/null && ! id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx docker; then
    usermod -aG docker "$SERVICE_USER"
    say "added $SERVICE_USER to group docker (app-store manages containers)"
  fi
  chown -R "$SERVICE_USER:" "$PREFIX/var"
  chmod 700 "$PREFIX/var" "$PREFIX/var/agent"
  chown "root:$(id -gn "$SERVICE_USER")" "$PREFIX/etc/agent.json"
}

enrolled() {
  [ -f "$PREFIX/var/agent/state.json" ] &&
    OP_FILE="$PREFIX/var/agent/state.json" "$NODE_BIN" -e 'const s = JSON.parse(require("node:fs").readFileSync(process.env.OP_FILE, "utf8")); process.exit(s.credential ? 0 : 1)' 2>/dev/null
}

enroll() {
  if enrolled; then
    say "already enrolled (credential in $PREFIX/var/agent/state.json); not joining again"
    return
  fi
  [ -n "$TOKEN" ] || fail "--token is required to enroll this node (create one on the controller: outpost token create)"
  local out
  # The token goes through the environment, not argv: it never shows up in the process list.
  if ! out=$(OUTPOST_JOIN_TOKEN="$TOKEN" "$PREFIX/bin/outpost" agent join --config "$PREFIX/etc/agent.json" --controller "$CONTROLLER" 2>&1); then
    fail "enrollment with $CONTROLLER failed: ${out#outpost: } (files are installed; re-run with a valid --token)"
  fi
  say "$out"
  if [ "$(id -u)" -eq 0 ]; then chown -R "$SERVICE_USER:" "$PREFIX/var"; fi
  chmod 600 "$PREFIX/var/agent/state.json"
}

systemd_running() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

install_unit() {
  local template="$SRC/scripts/systemd/outpost-agent.service" rendered
  rendered=$(render_unit "$template")
  local changed=0
  if [ ! -f "$UNIT_DIR/$UNIT_NAME" ] || [ "$(cat "$UNIT_DIR/$UNIT_NAME")" != "$rendered" ]; then
    printf '%s\n' "$rendered" >"$UNIT_DIR/$UNIT_NAME"
    systemctl daemon-reload
    changed=1
  fi
  systemctl enable --quiet "$UNIT_NAME"
  if [ "$changed" -eq 1 ] || [ "$CHANGED_APP" -eq 1 ] || [ "$CHANGED_CONFIG" -eq 1 ]; then
    systemctl restart "$UNIT_NAME"
  else
    systemctl start "$UNIT_NAME"
  fi
  say "waiting for the agent on port $PORT"
  local i
  for i in $(seq 60); do
    if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
      say "agent is up ($UNIT_NAME, user $SERVICE_USER); logs: journalctl -u $UNIT_NAME"
      return
    fi
    systemctl is-failed --quiet "$UNIT_NAME" && break
    sleep "$((i < 10 ? 1 : 2))"
  done
  journalctl -u "$UNIT_NAME" -n 20 --no-pager >&2 || true
  fail "the agent did not come up; see journalctl -u $UNIT_NAME"
}

render_unit() {
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@NODE@|$NODE_BIN|g" -e "s|@USER@|$SERVICE_USER|g" "$1"
}

config_fingerprint() {
  [ -f "$PREFIX/etc/agent.json" ] && sha256sum "$PREFIX/etc/agent.json" | cut -d' ' -f1
}

check_init() {
  [ "$USE_SYSTEMD" -eq 1 ] || return 0
  [ "$(id -u)" -eq 0 ] || fail "installing the systemd unit needs root; re-run with sudo, or use --no-systemd"
  systemd_running || fail "systemd is not running on this host; re-run with --no-systemd and start $PREFIX/bin/outpost-agent with your init system"
  [ -f "$SRC/scripts/systemd/outpost-agent.service" ] || fail "unit template $SRC/scripts/systemd/outpost-agent.service is missing from the sources"
}

install() {
  check_source
  check_prefix
  check_init
  check_node
  check_glibc
  PORT=$(effective_port)
  check_port
  install_files
  install_wrappers
  local before
  before=$(config_fingerprint || true)
  write_config
  CHANGED_CONFIG=0
  [ "$before" = "$(config_fingerprint)" ] || CHANGED_CONFIG=1
  ensure_user
  enroll
  if [ "$USE_SYSTEMD" -eq 1 ]; then
    install_unit
  else
    say "installed without systemd; start the agent with: $PREFIX/bin/outpost-agent$([ "$(id -u)" -eq 0 ] && printf ' (as %s: runuser -u %s -- %s/bin/outpost-agent)' "$SERVICE_USER" "$SERVICE_USER" "$PREFIX")"
  fi
  say "done: agent in $PREFIX, controller $CONTROLLER, local API port $PORT"
}

# ---------------------------------------------------------------- uninstall

# Agents started from this prefix by hand (--no-systemd) are ours to stop too.
stop_prefix_processes() {
  local dir pid pids=()
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$PREFIX/etc/agent.json"; then pids+=("$pid"); fi
  done
  [ "${#pids[@]}" -eq 0 ] && return
  say "stopping agent process(es) ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local i
  for i in $(seq 20); do
    kill -0 "${pids[@]}" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

uninstall() {
  local unit_here=0
  [ -f "$UNIT_DIR/$UNIT_NAME" ] && grep -qF "$PREFIX/etc/agent.json" "$UNIT_DIR/$UNIT_NAME" && unit_here=1
  if [ ! -f "$PREFIX/$MARKER" ] && [ "$unit_here" -eq 0 ]; then
    say "nothing to uninstall in $PREFIX"
    return
  fi
  if [ "$unit_here" -eq 1 ]; then
    [ "$(id -u)" -eq 0 ] || fail "removing the systemd unit needs root"
    if systemd_running; then systemctl disable --now --quiet "$UNIT_NAME" || true; fi
    rm -f "$UNIT_DIR/$UNIT_NAME"
    if systemd_running; then systemctl daemon-reload; fi
    say "removed $UNIT_NAME"
  fi
  stop_prefix_processes
  local created=""
  [ -f "$PREFIX/etc/.created-user" ] && created=$(cat "$PREFIX/etc/.created-user")
  if [ -f "$PREFIX/$MARKER" ]; then
    rm -rf "$PREFIX"
    say "removed $PREFIX (the node's credential with it; delete the node on the controller: outpost node delete ID)"
  fi
  if [ -n "$created" ] && id -u "$created" >/dev/null 2>&1; then
    userdel "$created" 2>/dev/null || fail "could not remove user $created (still running processes?)"
    say "removed user $created"
  fi
}

parse_args "$@"
if [ "$UNINSTALL" -eq 1 ]; then uninstall; else install; fi
