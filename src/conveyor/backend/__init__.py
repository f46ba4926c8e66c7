"""Storage engines behind one protocol; `create_backend` picks one from a URL."""

from conveyor.backend.factory import create_backend
from conveyor.backend.protocol import Backend

__all__ = ["Backend", "create_backend"]
