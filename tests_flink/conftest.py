import pytest


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server (Debian's binaries, bench/pgserver.py) for the outbox sink, removed at the end."""
    from bench.pgserver import PgServer

    with PgServer() as server:
        server.create_database("coltiva")
        yield server
