"""Uploads: large job inputs, streamed into the result store, named by an ``upload:<id>`` ref.

``POST /v1/uploads`` takes the file as the raw request body (``curl --data-binary @big.csv``),
with its type in ``Content-Type`` and its name in ``?filename=`` or ``Content-Disposition``.
The body is streamed to a temporary file of this API process (never held in memory), then
into the store (multipart for S3), and answered ``201`` with the ref to put in a job's
arguments. The 1 MiB body limit of the other routes does not apply here; ``--max-upload`` does.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from conveyor.api.auth import Principal
from conveyor.api.deps import COMMON_ERRORS, problem, scope, service
from conveyor.api.problems import ProblemError
from conveyor.errors import ConfigError
from conveyor.storage.store import FileStore
from conveyor.storage.uploads import Upload, UploadTooLarge

router = APIRouter(prefix="/v1", tags=["uploads"])
UPLOAD_PATH = "/v1/uploads"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*[Uu][Tt][Ff]-8''([^;]+)")
_FILENAME = re.compile(r'filename\s*=\s*"?([^";]+)"?')


class UploadView(BaseModel):
    """An uploaded file: put ``ref`` into a job's arguments."""

    id: str
    ref: str = Field(description="upload:<id>, the value a task argument takes to name this file")
    size: int
    sha256: str
    filename: str
    content_type: str
    created_at: float

    @classmethod
    def of(cls, upload: Upload) -> UploadView:
        return cls(**{k: v for k, v in upload.to_dict().items() if k != "tenant"})


def filename_from(disposition: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (RFC 6266 ``filename*`` preferred)."""
    if not disposition:
        return None
    star = _FILENAME_STAR.search(disposition)
    if star:
        return unquote(star.group(1).strip())
    plain = _FILENAME.search(disposition)
    return plain.group(1).strip() if plain else None


def _store(request: Request) -> FileStore:
    try:
        return service(request).conveyor.file_store
    except ConfigError as exc:
        raise ProblemError(501, str(exc), kind="unsupported-upload") from None


@router.post(
    "/uploads",
    status_code=201,
    response_model=UploadView,
    summary="Upload a file to use as a job input",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        201: {"description": "Stored; `ref` goes into a job's arguments"},
        **COMMON_ERRORS,
        413: problem("The file is larger than the upload limit"),
        415: problem("multipart/form-data: send the file as the raw body instead"),
    },
)
async def create_upload(
    request: Request,
    principal: Annotated[Principal, Depends(scope("submit"))],
    filename: Annotated[
        str | None, Query(max_length=255, description="The file's name (else Content-Disposition)")
    ] = None,
) -> JSONResponse:
    svc = service(request)
    store = _store(request)
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower() or None
    if ctype is not None and ctype.startswith("multipart/"):
        raise ProblemError(
            415,
            "send the file as the raw request body (curl --data-binary @file), not as a multipart form",
            kind="unsupported-upload",
        )
    name = filename or filename_from(request.headers.get("content-disposition"))
    limit = svc.config.max_upload
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, f"the upload is larger than the limit of {limit} bytes", kind="upload-too-large")
    with tempfile.TemporaryDirectory(prefix="conveyor-upload-") as folder:
        spool = Path(folder) / "body"
        size = 0
        with spool.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ProblemError(
                        413, f"the upload is larger than the limit of {limit} bytes", kind="upload-too-large"
                    )
                out.write(chunk)
        try:
            upload = await asyncio.to_thread(
                store.create_upload,
                spool,
                tenant=principal.tenant,
                filename=name or "upload",
                content_type=ctype if ctype and ctype != "application/x-www-form-urlencoded" else None,
                max_size=limit,
            )
        except UploadTooLarge as exc:
            raise ProblemError(413, str(exc), kind="upload-too-large") from None
    headers = {"Location": f"{UPLOAD_PATH}/{upload.id}"}
    return JSONResponse(UploadView.of(upload).model_dump(mode="json"), status_code=201, headers=headers)


@router.get(
    "/uploads/{upload_id}",
    response_model=UploadView,
    summary="An uploaded file's record",
    responses={**COMMON_ERRORS, 404: problem("No such upload for this tenant")},
)
async def get_upload(
    upload_id: str, request: Request, principal: Annotated[Principal, Depends(scope("read"))]
) -> UploadView:
    store = _store(request)
    upload = await asyncio.to_thread(store.upload, upload_id) if _UPLOAD_ID.match(upload_id) else None
    if upload is None or (not principal.admin and upload.tenant != principal.tenant):
        raise ProblemError(404, f"upload {upload_id} not found", kind="upload-not-found")
    return UploadView.of(upload)
