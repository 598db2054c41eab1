#!/usr/bin/env bash
# Install (Debian, as root) and start what DB Architect needs: PostgreSQL 15 with
# hypopg, pgvector, pg_stat_statements and pg_qualstats preloaded in a private cluster
# that logs timed-out and slow statements, and Redis.
# Idempotent: a second run changes nothing and says so.
set -euo pipefail

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The cluster lives in the checkout (ignored by git) when the postgres user can reach it;
# a checkout under a private home directory gets one under /var/lib/dbarchitect instead.
if [ -z "${DBARCHITECT_PGHOME:-}" ]; then
  if runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    DBARCHITECT_PGHOME=$ROOT/.local/postgres
  else
    DBARCHITECT_PGHOME=/var/lib/dbarchitect/postgres-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)
  fi
fi
PGHOME=$DBARCHITECT_PGHOME
PGPORT=${DBARCHITECT_PGPORT:-5544}
REDIS_PORT=${DBARCHITECT_REDIS_PORT:-6379}
changed=0

say() { echo "services: $*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "installing system packages needs root; run as root (sudo make services)" >&2
    exit 1
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root
  say "installing ${missing[*]}"
  if [ ! -f /var/lib/apt/periodic/dbarchitect-updated ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    apt-get update -qq
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/dbarchitect-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  changed=1
}

install_pgvector() {
  local sharedir
  sharedir=$("$PG_BIN/pg_config" --sharedir)
  [ -f "$sharedir/extension/vector.control" ] && return 0
  need_root
  apt_install postgresql-server-dev-$PG_MAJOR dpkg-dev build-essential
  say "building pgvector from the Debian source package"
  local src=/etc/apt/sources.list.d/dbarchitect-trixie-src.sources
  if [ ! -f "$src" ]; then
    cat >"$src" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
  fi
  local build
  build=$(mktemp -d)
  (cd "$build" && apt-get source -qq pgvector >/dev/null 2>&1 \
    || apt-get source --allow-unauthenticated -qq pgvector >/dev/null)
  local dir
  dir=$(find "$build" -maxdepth 1 -type d -name 'pgvector-*' | head -1)
  [ -n "$dir" ] || { say "pgvector source package not found" >&2; exit 1; }
  make -s -C "$dir" PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS="" >/dev/null
  make -s -C "$dir" PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS="" install >/dev/null
  rm -rf "$build"
  changed=1
}

# A PostgreSQL already on the port (another checkout's cluster) will do if it has what we need.
port_usable() {
  local out
  out=$(psql -X -At -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c \
    "SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'
        AND (SELECT count(*) FROM pg_available_extensions WHERE name IN ('vector', 'hypopg')) = 2" \
    2>/dev/null) || return 2
  [ "$out" = t ]
}

# What the audit reads beyond pg_stat_statements (appended last, so these lines win):
# - pg_qualstats samples every predicate with its constant. Its default sample rate,
#   1 / max_connections (0.5 % here), would miss most of a small demo or test workload;
#   this private cluster samples every statement (a server under real traffic keeps the
#   default or a few per cent: sampling costs on each execution).
# - The server's log keeps what pg_stat_statements never records: a statement cancelled by
#   statement_timeout (log_min_error_statement) and any over 1 s (log_min_duration_statement:
#   far past the 1 ms a query needs to count as slow, so the log holds only the statements an
#   audit must not miss, and a busy workload does not fill it). csvlog carries each line's database in a
#   column of its own and quotes multi-line statements, so nothing depends on a prefix; one
#   file per weekday, overwritten a week later, bounds the folder.
observability_settings() {
  cat <<CONF
# DB Architect: pg_qualstats and the statement log
shared_preload_libraries = 'pg_stat_statements,pg_qualstats'
pg_qualstats.sample_rate = 1
pg_qualstats.max = 10000
logging_collector = on
log_destination = 'csvlog'
log_directory = 'log'
log_filename = 'postgresql-%a.log'
log_truncate_on_rotation = on
log_rotation_age = 1d
log_rotation_size = 0
log_min_error_statement = error
log_min_duration_statement = 1000
log_line_prefix = '%m [%p] %q%u@%d '
CONF
}

start_cluster() {
  local data=$PGHOME/data run=$PGHOME/run log=$PGHOME/postgres.log
  if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    local usable=0
    port_usable || usable=$?
    if [ "$usable" = 0 ]; then
      psql -X -At -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "SHOW shared_preload_libraries" \
        2>/dev/null | grep -q pg_qualstats \
        || say "the PostgreSQL on port $PGPORT does not preload pg_qualstats: audits work" \
          "without it, and their reports say what it would add"
      return 0
    elif [ "$usable" = 1 ]; then
      say "port $PGPORT serves a PostgreSQL without pg_stat_statements preloaded or without" \
        "vector/hypopg; stop it or choose another port: make services PGPORT=5545" >&2
      exit 1
    fi
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data (port $PGPORT)"
    mkdir -p "$data" "$run"
    chown -R postgres:postgres "$PGHOME"
    chmod 700 "$data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
# DB Architect private cluster
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$run'
pg_stat_statements.track = top
pg_stat_statements.max = 10000
track_io_timing = on
max_connections = 200
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 512MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    observability_settings >>"$data/postgresql.conf"
    changed=1
  elif ! grep -q "^shared_preload_libraries = 'pg_stat_statements,pg_qualstats'" "$data/postgresql.conf"; then
    say "adding pg_qualstats and the statement log to the cluster in $data"
    observability_settings >>"$data/postgresql.conf"
    changed=1
  fi
  chown -R postgres:postgres "$PGHOME"
  if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    # A cluster created before pg_qualstats was preloaded reads the new lines on a restart.
    if [ "$(psql -X -At -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
        -c "SHOW shared_preload_libraries" 2>/dev/null)" != "pg_stat_statements,pg_qualstats" ]; then
      say "restarting PostgreSQL on 127.0.0.1:$PGPORT to preload pg_qualstats"
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 -m fast restart >/dev/null
      changed=1
    fi
    return 0
  fi
  say "starting PostgreSQL on 127.0.0.1:$PGPORT"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
  changed=1
}

start_redis() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    return 0
  fi
  say "starting Redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/dbarchitect.log
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "Redis did not start" >&2
  exit 1
}

apt_install postgresql-$PG_MAJOR postgresql-contrib postgresql-$PG_MAJOR-hypopg \
  postgresql-$PG_MAJOR-pg-qualstats redis-server
# What only the test suite uses: a headless browser, promtool + Prometheus, a compose client.
if [ "${DBARCHITECT_TEST_TOOLS:-0}" = 1 ]; then
  apt_install chromium prometheus docker-compose
fi
install_pgvector
start_cluster
start_redis

if [ "$changed" = 0 ]; then
  say "nothing to do: PostgreSQL on 127.0.0.1:$PGPORT and Redis on 127.0.0.1:$REDIS_PORT are up"
else
  say "ready: PostgreSQL on 127.0.0.1:$PGPORT and Redis on 127.0.0.1:$REDIS_PORT"
fi
