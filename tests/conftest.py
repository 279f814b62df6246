"""Fixtures: a database on each backend, and a console room driven with a moved clock.

Storage and scenario tests run on SQLite and on a real PostgreSQL server
started for the session. Without PostgreSQL binaries those runs skip with a
reason — unless COMMONS_TEST_REQUIRE_POSTGRES=1 (set by CI), where a missing
server is a failure.
"""

from __future__ import annotations

import itertools
import os

import pytest

from storage.db import Database
from tests.pgserver import PostgresServer, find_postgres_bindir

REQUIRE_POSTGRES = os.environ.get("COMMONS_TEST_REQUIRE_POSTGRES") == "1"
TEMPLATE = "commons_template"
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres():
    bindir = find_postgres_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found; install postgresql to run these"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bindir)
    server.start()
    # Migrate once into a template; each test gets a fresh copy of it.
    url = server.create_database(TEMPLATE)
    database = Database(url)
    database.upgrade()
    database.dispose()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'commons.db'}"
        database = Database(url)
        database.upgrade()
        database.dispose()
        return url
    server = request.getfixturevalue("postgres")
    name = f"commons_test_{os.getpid()}_{next(_numbers)}"
    url = server.create_database(name, template=TEMPLATE)
    request.addfinalizer(lambda: server.drop_database(name))
    return url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'commons.db'}"


@pytest.fixture(scope="session")
def synapse():
    """A real Synapse homeserver for the session (tests/synapse_server.py), on 127.0.0.1.

    Skips with a reason when matrix-synapse is not installed -- unless
    COMMONS_TEST_REQUIRE_SYNAPSE=1 or COMMONS_TEST_REQUIRE_POSTGRES=1 (CI),
    where that is a failure.  Imported lazily: only tests that use it pay.
    """
    import importlib.util

    if importlib.util.find_spec("synapse") is None:
        message = "matrix-synapse is not installed; pip install -e '.[test]' to run the Matrix homeserver tests"
        if REQUIRE_POSTGRES or os.environ.get("COMMONS_TEST_REQUIRE_SYNAPSE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from tests.synapse_server import SynapseServer

    server = SynapseServer()
    server.start()
    yield server
    server.stop()
