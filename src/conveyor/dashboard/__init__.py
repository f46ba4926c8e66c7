"""The dashboard: a few static pages that read the API and its event streams (admin scope).

No build step: one HTML page and one script. The browser authenticates with an admin key that
the login page stores in a ``conveyor_key`` cookie (HttpOnly, SameSite=Strict, Secure when the
request came over https), which the API accepts like a header, so ``fetch`` and
``EventSource`` need no token handling.

The login refuses a cross-origin form (login CSRF: a page elsewhere must not sign the browser in
with the attacker's key) by its ``Origin`` header (``Sec-Fetch-Site`` when there is none), and
sets the cookie only for a valid admin key. Pages get a strict CSP, ``X-Frame-Options: DENY``
and ``nosniff`` from ``api/server.py`` ``SecurityHeaders``. Behind a TLS-terminating proxy,
``conveyor serve --trusted-proxy ADDR`` makes its ``X-Forwarded-Proto`` count, so the cookie
gets ``Secure``; from anyone else the header is ignored.
"""

from __future__ import annotations

import html
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
        return _login_page("That key lacks the admin scope.", 403)
    return HTMLResponse(_page("index.html"))


@router.get("/login")
async def login_form() -> HTMLResponse:
    return HTMLResponse(_page("login.html").replace("{{message}}", ""))


def _same_origin(request: Request) -> bool:
    """True when the form was posted by a page of this very origin (or by a non-browser client).

    Chromium sends ``Origin: null`` for a same-origin form post from a page whose Referrer-Policy
    is ``no-referrer`` (the dashboard's), so there a browser's ``Sec-Fetch-Site`` (a header no
    page can set) decides; a real foreign origin is refused either way."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            return False
        if origin in (None, "null"):
            return True
    if origin is not None:
        return origin == f"{request.url.scheme}://{request.url.netloc}"
    return True


def _login_page(message: str, status: int) -> HTMLResponse:
    return HTMLResponse(_page("login.html").replace("{{message}}", html.escape(message)), status)


@router.post("/login")
async def login(request: Request) -> Response:
    if not _same_origin(request):
        return _login_page("Sign in from this server's own login page.", 403)
    form = parse_qs((await request.body()).decode(errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    try:
        principal = await service(request).auth.check_token(key or None)
    except ProblemError:
        return _login_page("That key is not valid.", 401)
    if not principal.admin:
        return _login_page("That key lacks the admin scope.", 403)
    response = RedirectResponse("/dashboard/", status_code=303)
    secure = request.url.scheme == "https"  # the scheme is the proxy's only with --trusted-proxy
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/")
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
