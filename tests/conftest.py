"""Shared fixtures (emulators started as real processes on loopback), and the order tests start in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tests.support.emulators import QUIET, StartEmulator
from tests.support.services import Postgres, postgres_cluster

# The modules of the longest tests (a real Airflow deployment, Meltano pipelines, the simulation, the
# in-process triggerer): collected first, so that pytest-xdist starts them first and no long test is
# left running alone at the end while the other workers idle.
STARTS_FIRST = (
    "test_airflow_deployment.py",
    "test_meltano_postgres.py",
    "test_simulation.py",
    "test_airflow_shared_stream.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in STARTS_FIRST)  # stable: the rest keep their order


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators with the given CLI arguments; all are stopped at the end of the test."""
    started: list[EmulatorProcess] = []

    def start(*args: str) -> EmulatorProcess:
        emulator = EmulatorProcess(*args).start()
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
