"""The file tests share the API tests' per-engine environment of real processes."""

from tests.api.conftest import env

__all__ = ["env"]
