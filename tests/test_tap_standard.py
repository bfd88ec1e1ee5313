"""The Singer SDK's standard tap tests, against an emulator started for this module."""

from __future__ import annotations

import atexit

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.tap.plugin import TapDisruptive
from tap_disruptive.testing import tap_config

pytestmark = pytest.mark.e2e

# The SDK builds its test class when this module is imported, with the config in hand: the emulator
# starts here and stops when the test run ends.
_EMULATOR = EmulatorProcess("--rate", "50", "--history-span", "600", "--history-interval", "60").start()
atexit.register(_EMULATOR.stop)

TestTapDisruptive = get_tap_test_class(
    tap_class=TapDisruptive,
    config=tap_config(_EMULATOR, start_date="2000-01-01T00:00:00Z", max_duration=3),
    suite_config=SuiteConfig(max_records_limit=150),
)
