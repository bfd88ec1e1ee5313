"""The wheel as users get it: the product's two packages and their data, nothing else, installed alone into
an empty venv (no Airflow), where both console commands work and the Airflow provider says how to get
Airflow."""

from __future__ import annotations

import email.parser
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider import require_airflow
from tap_disruptive.tap import TapDisruptive

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION: str = PROJECT["version"]
PACKAGES = ("tap_disruptive", "airflow_provider")
# What needs Airflow, and the extras that install it.
AIRFLOW_MODULES = {
    "airflow_provider.hooks.disruptive": "airflow",
    "airflow_provider.operators.disruptive": "airflow",
    "airflow_provider.sensors.disruptive": "airflow",
    "airflow_provider.triggers.disruptive": "airflow",
    "airflow_provider.example_dags.door_openings": "airflow",
    "airflow_provider.queues.disruptive": "airflow,messaging",
}


def uv() -> str:
    """The uv `make venv` installs, or one on PATH."""
    local = ROOT / ".tools" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    assert found, "uv is needed to build and install the wheel: `make venv` installs it in .tools/bin"
    return found


@dataclass(frozen=True)
class Distribution:
    """The wheel built from this tree, and an empty venv with only that wheel installed."""

    wheel: Path
    venv: Path

    @property
    def directory(self) -> Path:
        return self.wheel.parent

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def environment(self) -> dict[str, str]:
        """This process's environment without what would point Python at the source tree or its venv."""
        dropped = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
        return {name: value for name, value in os.environ.items() if name not in dropped}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # Run from the build directory, never the source tree: nothing there can shadow the installed code.
        return subprocess.run(
            args,
            cwd=self.directory,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _built(directory: Path) -> Distribution:
    dist = directory / "dist"
    subprocess.run(
        [uv(), "build", "--wheel", "--quiet", "--python", sys.executable, "--out-dir", str(dist), str(ROOT)],
        check=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        timeout=300,
    )
    (wheel,) = dist.glob("*.whl")
    venv = directory / "venv"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    # uv's cache makes this a second or two. Compiled once here, each command the tests run from the venv
    # starts in a fraction of a second instead of two (PYTHONDONTWRITEBYTECODE is set on these machines).
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--compile-bytecode", "--python", python, str(wheel)],
        check=True,
        timeout=300,
    )
    return Distribution(wheel, venv)


def built_distribution(tmp_path_factory: pytest.TempPathFactory) -> Distribution:
    """Build the wheel and its venv once per test run, whichever test process asks first: pytest-xdist's
    workers share their parent temporary directory, and a lock makes the others wait and reuse it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    directory = base / "tap-disruptive-distribution"
    with (base / "tap-disruptive-distribution.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = directory / "built.json"
            if done.exists():
                paths = json.loads(done.read_text())
                return Distribution(Path(paths["wheel"]), Path(paths["venv"]))
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            distribution = _built(directory)
            done.write_text(json.dumps({"wheel": str(distribution.wheel), "venv": str(distribution.venv)}))
            return distribution
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Distribution:
    return built_distribution(tmp_path_factory)


def source_files(package: str) -> set[str]:
    """The files of a package in the source tree, as the wheel names them."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_the_two_packages_and_their_data_only(distribution: Distribution) -> None:
    names = zipfile.ZipFile(distribution.wheel).namelist()
    dist_info = f"tap_disruptive-{VERSION}.dist-info"
    assert {name.split("/")[0] for name in names} == {*PACKAGES, dist_info}
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/"))]
    # Every file of both packages, the streams' JSON schemas among them (read at run time).
    packaged = {name for name in names if not name.startswith(dist_info)}
    assert packaged == set().union(*(source_files(package) for package in PACKAGES))
    assert {"tap_disruptive/tap/schemas/devices.json", "tap_disruptive/tap/schemas/events.json"} <= packaged


def test_the_wheel_metadata_says_where_the_project_lives(distribution: Distribution) -> None:
    with zipfile.ZipFile(distribution.wheel) as wheel:
        metadata = email.parser.Parser().parsestr(
            wheel.read(f"tap_disruptive-{VERSION}.dist-info/METADATA").decode()
        )
        entry_points = wheel.read(f"tap_disruptive-{VERSION}.dist-info/entry_points.txt").decode()
    repository = "https://github.com/tap-disruptive/tap-disruptive"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL", []))
    assert urls == {
        "Homepage": repository,
        "Documentation": f"{repository}#readme",
        "Repository": repository,
        "Issues": f"{repository}/issues",
    }
    classifiers = metadata.get_all("Classifier", [])
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert {"Programming Language :: Python :: 3.11", "Development Status :: 4 - Beta"} <= set(classifiers)
    assert {"singer", "meltano", "airflow"} <= set(metadata["Keywords"].split(","))
    assert "tap-disruptive = tap_disruptive.tap:main" in entry_points
    assert "disruptive-emulator = tap_disruptive.emulator.cli:main" in entry_points
    assert "provider_info = airflow_provider:get_provider_info" in entry_points


def test_the_tap_answers_version_about_and_discover(distribution: Distribution) -> None:
    version = distribution.run(distribution.bin("tap-disruptive"), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(f"tap-disruptive v{VERSION},")

    about_run = distribution.run(distribution.bin("tap-disruptive"), "--about", "--format=json")
    assert about_run.returncode == 0, about_run.stderr
    about = json.loads(about_run.stdout)
    assert (about["name"], about["version"]) == ("tap-disruptive", VERSION)
    assert "structured-logging" in about["capabilities"]
    assert set(TapDisruptive.config_jsonschema["properties"]) <= set(about["settings"]["properties"])

    # The schemas are package data: discovery needs them, and no credentials.
    discover = distribution.run(distribution.bin("tap-disruptive"), "--discover")
    assert discover.returncode == 0, discover.stderr[-2000:]
    catalog = json.loads(discover.stdout)
    streams = {stream["tap_stream_id"]: stream for stream in catalog["streams"]}
    assert set(streams) == {"devices", "events"}
    assert "event_id" in streams["events"]["schema"]["properties"]


def test_the_emulator_answers_version(distribution: Distribution) -> None:
    result = distribution.run(distribution.bin("disruptive-emulator"), "--version")
    assert result.returncode == 0, result.stderr
    assert VERSION in result.stdout


@pytest.fixture
def installed_emulator(distribution: Distribution) -> Iterator[dict[str, Any]]:
    """`disruptive-emulator` from the venv; its first stdout line says where it listens."""
    process = subprocess.Popen(
        [distribution.bin("disruptive-emulator"), "--devices", "2", "--history-span", "120"],
        cwd=distribution.directory,
        env=distribution.environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the emulator exited with {process.wait(timeout=30)} before it was ready"
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, "the emulator did not exit cleanly on SIGTERM"


def test_the_installed_tap_reads_the_installed_emulator(
    distribution: Distribution, installed_emulator: dict[str, Any], tmp_path: Path
) -> None:
    assert installed_emulator["api_url"].startswith("http://127.0.0.1:")
    settings = ("api_url", "token_url", "key_id", "key_secret", "email")
    config = {name: installed_emulator[name] for name in settings}
    config |= {"project_ids": installed_emulator["project_ids"], "live": False}
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    result = distribution.run(distribution.bin("tap-disruptive"), "--config", str(config_file))
    assert result.returncode == 0, result.stderr[-2000:]
    messages = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    devices = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "devices"]
    assert len(devices) == 2
    assert {m["stream"] for m in messages if m["type"] == "SCHEMA"} == {"devices", "events"}


def test_the_airflow_provider_without_airflow_says_how_to_install_it(distribution: Distribution) -> None:
    # `-I`: only the venv's site-packages, whatever the working directory and environment hold.
    probe = textwrap.dedent(
        """
        import importlib, importlib.metadata, importlib.util, json, sys
        result = {"airflow": importlib.util.find_spec("airflow") is not None, "errors": {}}
        for module in sys.argv[1:]:
            try:
                importlib.import_module(module)
            except ImportError as error:
                result["errors"][module] = [type(error).__name__, str(error), error.__cause__ is None]
        (entry_point,) = importlib.metadata.entry_points(group="apache_airflow_provider")
        result["provider_info"] = entry_point.load()()
        import airflow_provider, airflow_provider.conditions
        result["package"] = airflow_provider.__file__
        print(json.dumps(result))
        """
    )
    run = distribution.run(distribution.bin("python"), "-I", "-c", probe, *AIRFLOW_MODULES)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["airflow"] is False  # otherwise this test proves nothing
    assert result["package"].startswith(str(distribution.venv))
    assert set(result["errors"]) == set(AIRFLOW_MODULES)
    for module, extras in AIRFLOW_MODULES.items():
        kind, message, uncaused = result["errors"][module]
        assert kind == "ModuleNotFoundError"
        assert message.endswith(f"pip install 'tap-disruptive[{extras}]'"), message
        assert not message.startswith("No module named")
        assert uncaused  # one error, not a chain that ends in a bare "No module named 'airflow'"
    # The provider's metadata needs no Airflow: Airflow's providers manager reads it through the entry point.
    info = result["provider_info"]
    assert (info["package-name"], info["versions"]) == ("tap-disruptive", [VERSION])


def test_the_airflow_guard_passes_what_is_installed_and_reraises_other_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_airflow("here", "json")  # present: nothing happens
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'tap-disruptive\[x\]'") as missing:
        require_airflow("here", "no_such_airflow.sdk", extras="x")
    assert missing.value.name == "no_such_airflow"
    # A module that is there but fails on a dependency of its own keeps its own error: no misleading hint.
    (tmp_path / "broken_airflow_stub.py").write_text("import no_such_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match=r"^No module named 'no_such_dependency_of_it'$"):
        require_airflow("here", "broken_airflow_stub")
