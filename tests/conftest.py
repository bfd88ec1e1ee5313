"""Shared fixtures (emulators started as real processes on loopback), and the order tests start in."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import zip_longest
from typing import Any

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tests.support.emulators import QUIET, StartEmulator
from tests.support.services import Postgres, postgres_cluster

# The modules of the longest tests, longest first (a real Airflow deployment, Meltano pipelines, the
# in-process triggerer, tap runs across runs, the simulation).
LONGEST_FIRST = (
    "test_airflow_deployment.py",
    "test_meltano_postgres.py",
    "test_airflow_shared_stream.py",
    "test_tap_across_runs.py",
    "test_tap.py",
    "test_airflow_dags.py",
    "test_tap_connector.py",
    "test_simulation.py",
    "test_tap_logs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Their tests first, each followed by another test: `make test` runs pytest-xdist with
    --maxschedchunk 1, which hands each worker two tests at the start and one more as each ends, so the
    long tests start at once on different workers, and none is left running alone at the end."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    longest = sorted(
        (item for item in items if item.path.name in rank), key=lambda item: rank[item.path.name]
    )
    rest = [item for item in items if item.path.name not in rank]
    items[:] = [item for pair in zip_longest(longest, rest) for item in pair if item is not None]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators with the given CLI arguments and `EmulatorProcess` options; all are stopped at the
    end of the test."""
    started: list[EmulatorProcess] = []

    def start(*args: str, **options: Any) -> EmulatorProcess:
        emulator = EmulatorProcess(*args, **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        assert emulator.stop() == 0, "the emulator did not exit cleanly on SIGTERM"


@pytest.fixture
def quiet_emulator(start_emulator: StartEmulator) -> EmulatorProcess:
    return start_emulator(*QUIET)


@pytest.fixture(scope="module")
def shared_quiet_emulator() -> Iterator[EmulatorProcess]:
    """One quiet emulator for a whole module whose tests do not inject faults."""
    with EmulatorProcess(*QUIET) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_cluster() as cluster:
        yield cluster
