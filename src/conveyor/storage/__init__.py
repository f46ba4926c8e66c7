"""Files of jobs: artifacts (results) and uploads (inputs), in a directory or an S3 bucket."""

from conveyor.storage.store import FileStore, LocalResultStore, ResultStore, S3ResultStore, open_store
from conveyor.storage.uploads import Upload, UploadError, UploadTooLarge

__all__ = [
    "FileStore",
    "LocalResultStore",
    "ResultStore",
    "S3ResultStore",
    "Upload",
    "UploadError",
    "UploadTooLarge",
    "open_store",
]
