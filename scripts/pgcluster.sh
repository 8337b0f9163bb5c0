#!/usr/bin/env bash
# The private PostGIS cluster under ./.gridrisk/ that `make run` and `make test` use.
#   scripts/pgcluster.sh install        install PostgreSQL + PostGIS from the distribution if missing
#   scripts/pgcluster.sh start          initdb on first use, then start (idempotent)
#   scripts/pgcluster.sh stop           stop the cluster
#   scripts/pgcluster.sh status         exit 0 when it is running
#   scripts/pgcluster.sh createdb NAME  create database NAME (with PostGIS) if it does not exist
#   scripts/pgcluster.sh dropdb NAME    drop database NAME if it exists
#   scripts/pgcluster.sh diagnose       the server's own account of crashes, panics and full disks
#                                       (from its log), with the machine's free memory and disk
#   scripts/pgcluster.sh replica-start [PORT]  a hot-standby streaming replica of the cluster on PORT
#                                       (default: the cluster's port + 2): a base backup and a
#                                       replication slot on first use, then start (idempotent);
#                                       GRIDRISK_REPLICA_APPLY_DELAY_MS delays its replay on purpose
#   scripts/pgcluster.sh replica-stop [PORT]   stop it (its slot keeps the WAL it has not received)
#   scripts/pgcluster.sh replica-drop [PORT]   stop it, delete its data and drop its slot
# PostgreSQL refuses to run as root, so as root the cluster runs as the unprivileged OS user
# gridrisk-pg. It listens on 127.0.0.1:$GRIDRISK_PG_PORT (default 25432) and a socket in
# ./.gridrisk/run, trusts local connections only, and never touches the system's own clusters.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.gridrisk"
# Below Linux's ephemeral range (32768–60999), so no outgoing connection can hold the port.
PORT="${GRIDRISK_PG_PORT:-25432}"
OS_USER="gridrisk-pg"
DB_SUPERUSER="gridrisk"

say() { printf '\033[1m[pgcluster]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[pgcluster] error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null; then sudo "$@";
  else die "need root (or sudo) to run: $*"; fi
}

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  [ -n "$d" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

have_postgis() {
  local bin ver
  bin="$(pg_bindir)" || return 1
  ver="$(basename "$(dirname "$bin")")"
  [ -f "/usr/share/postgresql/$ver/extension/postgis.control" ]
}

cmd_install() {
  if pg_bindir >/dev/null && have_postgis; then return 0; fi
  command -v apt-get >/dev/null || die "PostgreSQL+PostGIS are missing and this is not a Debian/Ubuntu system: install them, or set GRIDRISK_DATABASE_URL to an existing PostGIS."
  say "installing PostgreSQL and PostGIS from the distribution's packages (apt-get)…"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  if ! pg_bindir >/dev/null; then
    as_root apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib >/dev/null
  fi
  local ver
  ver="$(basename "$(dirname "$(pg_bindir)")")"
  as_root apt-get install -y -qq --no-install-recommends "postgresql-$ver-postgis-3" >/dev/null
  have_postgis || die "PostGIS did not install for PostgreSQL $ver; try: apt-get install postgresql-$ver-postgis-3"
  say "PostgreSQL $ver with PostGIS installed"
}

# Where the data lives. Normally ./.gridrisk/pgdata; if the checkout sits below a directory the
# unprivileged user cannot enter (e.g. /root), the data goes to /var/lib/gridrisk/<hash> instead.
resolve_dirs() {
  mkdir -p "$STATE"
  RUN_AS=()
  if [ "$(id -u)" -eq 0 ]; then
    id "$OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
    RUN_AS=(runuser -u "$OS_USER" --)
    if ! runuser -u "$OS_USER" -- test -x "$STATE"; then
      chmod o+x "$STATE" 2>/dev/null || true
    fi
    if ! runuser -u "$OS_USER" -- test -x "$STATE"; then
      local alt
      alt="/var/lib/gridrisk/$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
      mkdir -p "$alt"
      chown "$OS_USER" "$alt"
      BASE="$alt"
    else
      BASE="$STATE"
    fi
  else
    BASE="$STATE"
  fi
  PGDATA="$BASE/pgdata"
  SOCK="$BASE/run"
  LOG="$BASE/postgres.log"
  BIN="$(pg_bindir)" || die "PostgreSQL is not installed; run: scripts/pgcluster.sh install"
}

run_pg() { "${RUN_AS[@]}" "$@"; }

cmd_start() {
  resolve_dirs
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    say "creating the private cluster in $PGDATA"
    mkdir -p "$PGDATA" "$SOCK"
    [ "${#RUN_AS[@]}" -gt 0 ] && chown "$OS_USER" "$PGDATA" "$SOCK" && chmod 700 "$PGDATA"
    run_pg "$BIN/initdb" -D "$PGDATA" -U "$DB_SUPERUSER" --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >/dev/null 2>&1 || run_pg "$BIN/initdb" -D "$PGDATA" -U "$DB_SUPERUSER" \
      --auth=trust --encoding=UTF8 --no-locale >/dev/null
    run_pg sh -c "echo \"include '$BASE/gridrisk.conf'\" >> '$PGDATA/postgresql.conf'"
  fi
  # Written on every start, so a changed GRIDRISK_PG_PORT takes effect.
  cat > "$BASE/gridrisk.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 200
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 256MB
max_wal_size = 2GB
checkpoint_timeout = 15min
logging_collector = off
CONF
  [ "${#RUN_AS[@]}" -gt 0 ] && chown "$OS_USER" "$BASE/gridrisk.conf"
  mkdir -p "$SOCK"
  [ "${#RUN_AS[@]}" -gt 0 ] && chown "$OS_USER" "$SOCK"
  if run_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    return 0
  fi
  pg_start "$PGDATA" "$LOG" "PostgreSQL on 127.0.0.1:$PORT" "is port $PORT taken? set GRIDRISK_PG_PORT"
}

# Start the server of data directory $1, logging to $2 ($3: what it is, $4: a hint if it fails).
pg_start() {
  touch "$2"
  [ "${#RUN_AS[@]}" -gt 0 ] && chown "$OS_USER" "$2"
  say "starting $3 (log: $2)"
  if ! run_pg "$BIN/pg_ctl" -D "$1" -l "$2" -w -t 120 start >/dev/null; then
    tail -n 20 "$2" >&2 || true
    die "$3 did not start; see $2 ($4)"
  fi
}

# Stop the server of data directory $1 if it runs ($2: what it is).
pg_stop() {
  if [ -s "$1/PG_VERSION" ] && run_pg "$BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; then
    run_pg "$BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null
    say "$2 stopped"
  else
    say "$2 not running"
  fi
}

cmd_stop() {
  resolve_dirs
  pg_stop "$PGDATA" "PostgreSQL"
}

cmd_status() {
  resolve_dirs
  run_pg "$BIN/pg_ctl" -D "$PGDATA" status
}

psql_admin() {
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$DB_SUPERUSER" -d postgres "$@"
}

cmd_createdb() {
  local name="$1"
  resolve_dirs
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE \"$name\""
    say "created database $name"
  fi
}

cmd_dropdb() {
  resolve_dirs
  psql_admin -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"
}

# The replica's data directory sits beside the cluster's; its postgresql.conf is the primary's
# (copied by the base backup) with replica.conf included last, so that its own port wins.
replica_dirs() {
  resolve_dirs
  RPORT="${1:-$((PORT + 2))}"
  RDATA="$BASE/replica-$RPORT"
  RLOG="$BASE/replica-$RPORT.log"
  SLOT="gridrisk_replica_$RPORT"
}

cmd_replica_start() {
  replica_dirs "${1:-}"
  run_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 || die "the cluster is not running: scripts/pgcluster.sh start"
  if [ ! -s "$RDATA/PG_VERSION" ]; then
    say "base backup of 127.0.0.1:$PORT into $RDATA (replication slot $SLOT)…"
    rm -rf "$RDATA"
    mkdir -p "$RDATA"
    [ "${#RUN_AS[@]}" -gt 0 ] && chown "$OS_USER" "$RDATA"
    chmod 700 "$RDATA"
    psql_admin -tAc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$SLOT'" >/dev/null
    run_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U "$DB_SUPERUSER" -D "$RDATA" \
      --write-recovery-conf --wal-method=stream --create-slot --slot="$SLOT" --checkpoint=fast \
      || die "pg_basebackup failed"
    run_pg sh -c "echo \"include '$RDATA/replica.conf'\" >> '$RDATA/postgresql.conf'"
  fi
  # Written on every start, so a changed delay takes effect. (A hot standby needs max_connections
  # at least the primary's: it keeps the included value.)
  cat > "$RDATA/replica.conf" <<CONF
port = $RPORT
hot_standby = on
hot_standby_feedback = on
recovery_min_apply_delay = '${GRIDRISK_REPLICA_APPLY_DELAY_MS:-0}ms'
shared_buffers = 128MB
CONF
  [ "${#RUN_AS[@]}" -gt 0 ] && chown "$OS_USER" "$RDATA/replica.conf"
  if run_pg "$BIN/pg_ctl" -D "$RDATA" status >/dev/null 2>&1; then
    run_pg "$BIN/pg_ctl" -D "$RDATA" reload >/dev/null
    return 0
  fi
  pg_start "$RDATA" "$RLOG" "the replica on 127.0.0.1:$RPORT" "is port $RPORT taken?"
}

cmd_replica_stop() {
  replica_dirs "${1:-}"
  pg_stop "$RDATA" "the replica on $RPORT"
}

cmd_replica_drop() {
  cmd_replica_stop "${1:-}"
  rm -rf "$RDATA" "$RLOG"
  if run_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    psql_admin -tAc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$SLOT'" >/dev/null
  fi
  say "replica on $RPORT dropped"
}

# What `make test` prints when the suite fails: a test that sees "server closed the connection
# unexpectedly" or "in recovery mode" only knows that a server process died; the log says which
# process, by what signal, running which statement (or which disk was full).
cmd_diagnose() {
  resolve_dirs
  [ -f "$LOG" ] || { say "no server log at $LOG"; return 0; }
  local pattern='terminated by signal|was terminated|PANIC|out of memory|No space left|Failed process was running|could not (write|extend|fork)'
  if grep -Eq "$pattern" "$LOG"; then
    say "the server's log ($LOG) reports:"
    grep -E -A2 "$pattern" "$LOG" | cut -c1-400 | tail -n 40 >&2
  else
    say "the server's log ($LOG) reports no crash, panic or full disk"
  fi
  free -m >&2 || true
  df -h "$BASE" >&2 || true
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  createdb) cmd_createdb "${2:?database name}" ;;
  dropdb) cmd_dropdb "${2:?database name}" ;;
  replica-start) cmd_replica_start "${2:-}" ;;
  replica-stop) cmd_replica_stop "${2:-}" ;;
  replica-drop) cmd_replica_drop "${2:-}" ;;
  diagnose) cmd_diagnose ;;
  *) die "usage: $0 install|start|stop|status|diagnose|createdb NAME|dropdb NAME|replica-start|replica-stop|replica-drop [PORT]" ;;
esac
