"""The dashboard: a few static pages that read the API and its event streams (admin scope).

No build step: one HTML page and one script. The browser authenticates with an admin key that
the login page stores in a ``conveyor_key`` cookie (HttpOnly, SameSite=Strict), which the API
accepts like a header, so ``fetch`` and ``EventSource`` need no token handling.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conveyor.api.auth import COOKIE
from conveyor.api.deps import service
from conveyor.api.problems import ProblemError

router = APIRouter(prefix="/dashboard", include_in_schema=False)
_STATIC = resources.files("conveyor.dashboard").joinpath("static")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def _page(name: str) -> str:
    return _STATIC.joinpath(name).read_text()


@router.get("")
@router.get("/")
async def index(request: Request) -> Response:
    try:
        principal = await service(request).auth.principal(request)
    except ProblemError:
        return RedirectResponse("/dashboard/login", status_code=303)
    if not principal.admin:
        return HTMLResponse(_page("login.html").replace("{{message}}", "That key lacks the admin scope."), 403)
    return HTMLResponse(_page("index.html"))


@router.get("/login")
async def login_form() -> HTMLResponse:
    return HTMLResponse(_page("login.html").replace("{{message}}", ""))


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode(errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    response = RedirectResponse("/dashboard/", status_code=303)
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/")
    return response


@router.get("/logout")
async def logout() -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in ("app.js", "style.css"):
        raise ProblemError(404, "no such file")
    suffix = name[name.rfind(".") :]
    return Response(_page(name), media_type=_TYPES[suffix], headers={"Cache-Control": "no-cache"})
