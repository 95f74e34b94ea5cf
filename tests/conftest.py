import os
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
JOURNEYS = sorted((ROOT / "journeys").glob("*.journey"))

# In CI (CI=true) the examples are derandomized: a run is reproducible, and a landing is never refused by a
# new example found by chance; local runs explore new examples each time.
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=os.environ.get("CI") == "true")
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def root() -> Path:
    return ROOT


# -- stores: every engine test that takes `store_at` runs on SQLite and on PostgreSQL ------------

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server for this test process (one per xdist worker), removed at the end."""
    from bench.pgserver import PgServer

    with PgServer() as server:
        server.create_database("coltiva")
        yield server


class StoreMaker:
    """Fresh stores of one backend: an SQLite file in a folder, or a new schema of the test server."""

    _count = 0

    def __init__(self, backend: str, folder: Path, pg=None):
        self.backend = backend
        self.folder = folder
        self.pg = pg
        self.free: list[str] = []

    def __call__(self, name: str = "s"):
        StoreMaker._count += 1
        if self.backend == "sqlite":
            return self.folder / f"{name}-{StoreMaker._count}.db"
        if self.free:  # an emptied store of an earlier example: far cheaper than a new schema
            return self.free.pop()
        return self.pg.create_schema("coltiva", f"{name}_{os.getpid()}_{StoreMaker._count}".lower())

    def drop(self, target) -> None:
        """Done with a store made here (hypothesis makes hundreds): a file is removed, a schema emptied
        for the next example (every table: the store is as new)."""
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            return
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                                 "AND tablename <> 'coltiva_meta'")]
            if tables:  # the format stays: the tables are those this version makes
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        self.free.append(target)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def stores(backend, request, tmp_path_factory) -> StoreMaker:
    """Session-wide maker of fresh stores (hypothesis examples may use it: it holds no per-test state)."""
    pg = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    return StoreMaker(backend, tmp_path_factory.mktemp("stores"), pg)


@pytest.fixture
def store_at(stores) -> StoreMaker:
    """`store_at("name")`: the address of a fresh, empty store (a path or a postgresql:// URL)."""
    return stores
