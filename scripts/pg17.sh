#!/usr/bin/env bash
# Install (Debian, as root) and start a PostgreSQL 17 with hypopg, pgvector and
# pg_stat_statements preloaded, for the tests that audit a modern server
# (EXPLAIN (GENERIC_PLAN), the pg_stat_statements 1.11 columns). Only `make test` runs it.
#
# Debian bookworm ships only PostgreSQL 15. trixie has 17, but its source packages are not
# all downloadable from the mirror here (postgresql-17 and hypopg answer 404) and its
# binaries need glibc 2.38+. So trixie's binary packages are unpacked, with the libraries
# they need (trixie's glibc included), into a private tree, and the PostgreSQL binaries
# are pointed at that tree's loader and libraries (patchelf): nothing of the system's
# changes. The tree is cached outside the checkout, one directory per version; a second
# run, or another checkout on this machine, reuses it and says so.
set -euo pipefail

CACHE=${DBARCHITECT_PG17_CACHE:-/var/lib/dbarchitect}
PGPORT=${DBARCHITECT_PG17_PORT:-5545}
APT_DIR=$CACHE/apt-trixie
DATA=$CACHE/pg17-data-$PGPORT
RUN=$CACHE/pg17-run-$PGPORT
LOG=$CACHE/pg17-$PGPORT.log
PACKAGES=(postgresql-17 postgresql-17-hypopg postgresql-17-pgvector)

say() { echo "pg17: $*"; }
fail() {
  say "$*" >&2
  exit 1
}

# The newest complete tree in the cache (one that stopped halfway has no .complete).
cached_root() {
  local dir
  for dir in $(ls -d "$CACHE"/pg17-17.* 2>/dev/null | sort -V -r); do
    [ -f "$dir/.complete" ] && { echo "$dir"; return 0; }
  done
  return 1
}

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# apt-get or apt-cache ($1) with its own lists, cache and an empty dpkg status: it resolves
# trixie's packages with every dependency and downloads them, and never touches the
# system's apt state.
trixie_apt() {
  local tool=$1
  shift
  "$tool" -q -o Dir::State="$APT_DIR" -o Dir::State::Lists="$APT_DIR/lists" \
    -o Dir::State::status="$APT_DIR/status" -o Dir::Cache="$APT_DIR/cache" \
    -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$APT_DIR/sources" \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
    -o APT::Sandbox::User=root -o APT::Architecture=amd64 -o APT::Install-Recommends=0 "$@"
}

install_tree() {
  apt_install patchelf debian-archive-keyring
  mkdir -p "$APT_DIR"/lists/partial "$APT_DIR"/cache/archives/partial "$APT_DIR"/sources
  touch "$APT_DIR/status"
  cat >"$APT_DIR/sources/trixie.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local started=$SECONDS
  trixie_apt apt-get update -qq >/dev/null || fail "apt-get update of trixie failed: is deb.debian.org reachable?"
  local version
  version=$(trixie_apt apt-cache policy postgresql-17 2>/dev/null | sed -n 's/^ *Candidate: //p')
  [ -n "$version" ] && [ "$version" != "(none)" ] || fail "trixie has no postgresql-17 package"
  local root=$CACHE/pg17-$version
  say "installing PostgreSQL $version with hypopg and pgvector from trixie into $root"
  trixie_apt apt-get clean
  trixie_apt apt-get install -y -qq --download-only "${PACKAGES[@]}" >/dev/null \
    || fail "could not download ${PACKAGES[*]} from trixie"
  rm -rf "$root" "$root.partial"
  mkdir -p "$root.partial"
  local deb
  # The libraries and PostgreSQL itself; not the maintainer tools (perl, debconf...).
  for deb in "$APT_DIR"/cache/archives/{lib,zlib1g_,postgresql-17,postgresql-client-17_}*.deb; do
    [ -f "$deb" ] && dpkg-deb -x "$deb" "$root.partial"
  done
  trixie_apt apt-get clean
  local lib=$root/usr/lib/x86_64-linux-gnu pg=$root.partial/usr/lib/postgresql/17 file
  # Run on trixie's own loader and libraries, found where the tree will be.
  for file in "$pg"/bin/*; do
    patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$file"
  done
  for file in "$pg"/lib/*.so; do
    patchelf --force-rpath --set-rpath "$lib" "$file"
  done
  mv "$root.partial" "$root"
  "$root/usr/lib/postgresql/17/bin/postgres" -V >/dev/null \
    || fail "the PostgreSQL 17 in $root does not run"
  touch "$root/.complete"
  say "installed PostgreSQL $version in $((SECONDS - started)) s"
}

# 0: the port serves a PostgreSQL 17 with what the tests need (ours or another checkout's);
# 1: it serves something else; 2: nothing answers.
port_state() {
  local out
  out=$(psql -X -At -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c \
    "SELECT current_setting('server_version_num')::int / 10000 = 17
        AND current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'
        AND EXISTS (SELECT FROM pg_available_extensions WHERE name = 'hypopg')" \
    2>/dev/null) || return 2
  [ "$out" = t ]
}

start_cluster() {
  local bin=$1/usr/lib/postgresql/17/bin
  if runuser -u postgres -- "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    fail "the cluster in $DATA is running but 127.0.0.1:$PGPORT does not answer as a" \
      "PostgreSQL 17 with hypopg; see $LOG"
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "creating a PostgreSQL 17 cluster in $DATA (port $PGPORT)"
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA"
    chmod 700 "$DATA"
    runuser -u postgres -- "$bin/initdb" -D "$DATA" -U postgres --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
# DB Architect test cluster (PostgreSQL 17)
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
track_io_timing = on
max_connections = 50
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  mkdir -p "$RUN"
  touch "$LOG"
  chown postgres:postgres "$RUN" "$LOG"
  say "starting PostgreSQL 17 on 127.0.0.1:$PGPORT"
  # 9>&-: the server must not inherit (and hold for ever) the lock of this run.
  runuser -u postgres -- "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 9>&- \
    || fail "PostgreSQL 17 did not start; see $LOG"
}

server_version() {
  psql -X -At -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "SHOW server_version"
}

# A server already up is all the tests need; checked again under the lock, which keeps
# two runs (two checkouts' `make test`) from installing or starting it at once.
up_or_refuse() {
  local state=0
  port_state || state=$?
  if [ "$state" = 0 ]; then
    say "nothing to do: PostgreSQL $(server_version) on 127.0.0.1:$PGPORT is up"
    exit 0
  elif [ "$state" = 1 ]; then
    fail "port $PGPORT serves a PostgreSQL that is not 17 with pg_stat_statements preloaded" \
      "and hypopg; stop it or choose another port: DBARCHITECT_PG17_PORT=5546 make test"
  fi
}

up_or_refuse
[ "$(id -u)" = 0 ] || fail "installing and starting PostgreSQL 17 needs root; run as root (sudo make test)"
mkdir -p "$CACHE"
# The postgres user runs the binaries and owns the cluster: it must reach the cache.
chmod 755 "$CACHE"
exec 9>"$CACHE/pg17.lock"
flock 9
up_or_refuse
root=$(cached_root) || { install_tree; root=$(cached_root); }
start_cluster "$root"
port_state || fail "PostgreSQL 17 started but does not answer on 127.0.0.1:$PGPORT; see $LOG"
say "ready: PostgreSQL $(server_version) on 127.0.0.1:$PGPORT"
