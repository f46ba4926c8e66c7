"""Where result files (artifacts) go: kept for imports; the store lives in ``conveyor.storage``."""

from conveyor.storage.store import FileStore, LocalResultStore, ResultStore, S3ResultStore, open_store

__all__ = ["FileStore", "LocalResultStore", "ResultStore", "S3ResultStore", "open_store"]
