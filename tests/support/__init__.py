"""Helpers of our own tests; the tests import these, never each other or conftest."""
