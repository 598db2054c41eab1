"""Private PostgreSQL servers for tests: a data folder and a port of their own, stopped and
removed when the block ends (also on failure), so a test can change what a shared cluster
must not (preloaded libraries, passwords, a standby)."""

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg


@dataclass(frozen=True)
class PrivateServer:
    port: int
    data: Path

    def url(self, dbname: str, *, password: str | None = None) -> str:
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgres://{auth}@127.0.0.1:{self.port}/{dbname}"


def server_bindir(conn: psycopg.Connection) -> Path:
    """The binaries of the same major version as the server `conn` is connected to."""
    return Path(f"/usr/lib/postgresql/{conn.info.server_version // 10000}/bin")


@contextmanager
def private_server(
    bindir: Path,
    *,
    password: str | None = None,
    settings: dict[str, str] | None = None,
    standby_of: PrivateServer | None = None,
) -> Iterator[PrivateServer]:
    """A started server: a new cluster (trust, or scram with `password`), or a hot standby
    of `standby_of` made with pg_basebackup -R. `settings` go on the server's command line."""
    # initdb refuses root: as root, the cluster belongs to the postgres user.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="dbarchitect-pg-"))
    if as_owner:
        shutil.chown(home, "postgres")
    data = home / "data"
    pg_ctl = [*as_owner, bindir / "pg_ctl", "-D", data, "-l", home / "log", "-w"]
    try:
        if standby_of is not None:
            backup = [bindir / "pg_basebackup", "-D", data, "-R", "-X", "stream", "-c", "fast"]
            backup += ["-h", "127.0.0.1", "-p", str(standby_of.port), "-U", "postgres"]
            subprocess.run([*as_owner, *backup], check=True, capture_output=True)
        else:
            initdb = [bindir / "initdb", "-D", data, "-U", "postgres", "--no-sync"]
            if password:
                (home / "pw").write_text(password)
                if as_owner:
                    shutil.chown(home / "pw", "postgres")
                initdb += ["-A", "scram-sha-256", "--pwfile", home / "pw"]
            else:
                initdb += ["-A", "trust"]
            subprocess.run([*as_owner, *initdb], check=True, capture_output=True)
        port = _free_port()
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {key}={value}" for key, value in (settings or {}).items())
        subprocess.run([*pg_ctl, "-o", options, "start"], check=True, capture_output=True)
        yield PrivateServer(port=port, data=data)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
