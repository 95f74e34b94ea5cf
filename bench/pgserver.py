"""A private PostgreSQL server in a temporary folder, for the tests and `make bench`.

Started from Debian's binaries (/usr/lib/postgresql/N/bin), listening on a Unix
socket in its folder only (no TCP), with fsync off (a scratch server). As root,
PostgreSQL refuses to run: the server runs as the `postgres` user instead.

`synchronous_commit` stays on (PostgreSQL's default): a commit returns once its
WAL is written to the operating system, as an SQLite commit (WAL,
`synchronous=NORMAL`) returns once its pages are in the WAL file. With fsync off
neither waits for the disk, so a commit survives the crash of any process but not
a power cut, on both stores alike (docs/scaling.md, *Durability*).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PgServer", "find_bin"]


def find_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


class PgServer:
    """`with PgServer() as pg: pg.url("dbname")`; `pg.create_database(name)` gives a fresh one."""

    def __init__(self, port: int = 5432, settings: str = ""):
        found = find_bin()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed: `make test-deps` installs Debian's postgresql")
        self.bin = found
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="coltiva-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.socket = self.root / "sock"
        self.as_root = os.geteuid() == 0
        self.settings = settings  # more `-c name=value` options for the server

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")

    def start(self) -> "PgServer":
        self.socket.mkdir()
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket, "postgres")
        self._run("initdb", "--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                  "-D", str(self.data))
        self._start()
        return self

    def _start(self) -> None:
        self._run("pg_ctl", "start", "-w", "-s", "-D", str(self.data), "-l", str(self.root / "log"), "-o",
                  f"-k {self.socket} -p {self.port} -c listen_addresses='' -c fsync=off "
                  f"-c full_page_writes=off -c max_connections=200 {self.settings}")

    def crash_and_restart(self) -> None:
        """Stop the server as a crash does (`immediate`: no checkpoint, what is only in its memory is
        lost), then start it again: it recovers from its write-ahead log."""
        self._run("pg_ctl", "stop", "-s", "-m", "immediate", "-D", str(self.data))
        self._start()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-s", "-m", "immediate", "-D", str(self.data))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, dbname: str = "postgres", schema: str | None = None) -> str:
        options = f"&options=-csearch_path%3D{schema}" if schema else ""
        return f"postgresql://postgres@/{dbname}?host={self.socket}&port={self.port}{options}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, dbname: str, schema: str) -> str:
        """A fresh schema: a store of its own, cheaper to make than a database."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return self.url(dbname, schema)

    def drop_schema(self, dbname: str, schema: str) -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
