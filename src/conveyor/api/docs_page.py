"""``/docs``: Swagger UI served from assets inside the installed packages, never from a CDN.

FastAPI's default page loads Swagger UI from a CDN, so on a machine without internet access
it is blank. The assets come from ``fastapi-offline`` (a maintained package that bundles
Swagger UI 5, which renders OpenAPI 3.1); only its static files are used.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve ``/docs`` and its assets on ``app``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # no schema validator badge: it would call validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )
