"""The UI shell at /ui: sign-in, the layout and navigation, languages, static files; the
domains' pages mounted inside it.

Signing in to the pages uses the accounts, passwords, lockout and audit of `yilian.auth`:
the page session is an access token of the user (the scopes their roles allow) kept in an
HttpOnly, SameSite=Strict cookie, so every page sees exactly what the same user would see
through /fhir. Writes from the pages carry a CSRF token (double submit: the cookie and a
header or form field must agree).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from yilian.auth.service import User, authenticate, token_for
from yilian.auth.tokens import Keys
from yilian.domains.inpatient import views as inpatient_views
from yilian.errors import Forbidden, Unauthorized, YilianError
from yilian.fhir.access import Access
from yilian.fhir.audit import Auditor, Entry, append
from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.kit.db import write_transaction
from yilian.kit.forms import FormError, parse_form
from yilian.kit.ratelimit import RateLimiter
from yilian.web import i18n

SESSION_COOKIE = "yl_session"
CSRF_COOKIE = "yl_csrf"
SESSION_MINUTES = 10 * 60  # a ward shift
_HERE = Path(__file__).parent
_TEMPLATE_DIRS = [_HERE / "templates", inpatient_views.TEMPLATES]


@dataclass
class PageContext:
    """What every page's template gets besides its own values."""

    request: Request
    access: Access | None
    csrf: str

    def as_dict(self) -> dict[str, Any]:
        locale = i18n.current_locale.get()
        return {"request": self.request, "user": _username(self.access), "csrf": self.csrf,
                "locale": locale, "lang": i18n.html_lang(locale),
                "path": self.request.url.path,
                "query": self.request.url.query}


def environment() -> Environment:
    env = Environment(loader=ChoiceLoader([FileSystemLoader(d) for d in _TEMPLATE_DIRS]),
                      autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


class Pages:
    """The /ui application: its routes and how a page request is authenticated."""

    def __init__(self, engine: Engine, keys: Keys, verify: Callable[[str | None], Access],
                 auditor: Auditor, fhir: Callable[[FhirRequest], FhirResponse],
                 *, secure_cookies: bool = False,
                 sign_out: Callable[[str, str], bool] | None = None) -> None:
        self.engine = engine
        self.keys = keys
        self.verify = verify  # a token to its Access (may read the database: in a thread)
        self.sign_out = sign_out  # ends a session's token (None: access control is off)
        self.auditor = auditor
        self.fhir = fhir
        self.secure = secure_cookies
        self.env = environment()
        self.sign_in_limit = RateLimiter(10, 60)

    def routes(self) -> list[BaseRoute]:
        inpatient = inpatient_views.InpatientViews(self.engine, self.render, self.fhir,
                                                   self.audit)
        return [
            Route("/", self.home),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/language", self.language, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=_HERE / "static"), name="static"),
            *[Route(f"/inpatient{path}", self._page(handler), methods=methods)
              for path, handler, methods in inpatient.routes()],
        ]

    def audit(self, request: Request, access: Access, entities: tuple[str, ...]) -> None:
        """A page that showed patients' records: its audit entry, naming them."""
        query = f"?{request.url.query}" if request.url.query else ""
        self.auditor.later(Entry("search-type", access.subject, 0, source=_address(request),
                                 path=f"{request.method} {request.url.path}{query}",
                                 entities=entities))

    # --- rendering ------------------------------------------------------------------------

    def render(self, request: Request, template: str, values: dict[str, Any],
               status: int = 200) -> Response:
        access = getattr(request.state, "access", None)
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        context = PageContext(request, access, csrf)
        html = self.env.get_template(template).render({**context.as_dict(), **values})
        response = HTMLResponse(html, status_code=status)
        if csrf != request.cookies.get(CSRF_COOKIE):  # the token its forms will send back
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict",
                                secure=self.secure, path="/ui")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'")
        return response

    def _page(self, handler: Callable[[Request], Awaitable[Response]]
              ) -> Callable[[Request], Awaitable[Response]]:
        """A domain page: the caller signed in (else to the sign-in page), CSRF checked on
        writes, errors shown as pages."""
        async def page(request: Request) -> Response:
            i18n.current_locale.set(self._locale(request))
            try:
                request.state.access = await run_in_threadpool(
                    self.verify, f"Bearer {request.cookies.get(SESSION_COOKIE, '')}")
            except Unauthorized:
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": "/ui/login"})
                target = request.url.path + (f"?{request.url.query}" if request.url.query
                                             else "")
                return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
            if request.method == "POST" and not self._csrf_ok(request, await _form_csrf(request)):
                return self._error(request, Forbidden(
                    "YL-6201", i18n.gettext("The page has expired: reload it and try again")))
            try:
                return await handler(request)
            except YilianError as error:
                return self._error(request, error)

        return page

    def _error(self, request: Request, error: YilianError) -> Response:
        return self.render(request, "ui/error.html", {"error": error},
                           status=error.http_status)

    # --- the shell's own pages --------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/ui/inpatient/board", status_code=303)

    async def login(self, request: Request) -> Response:
        i18n.current_locale.set(self._locale(request))
        target = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self._login_page(request, target, None, "")
        form = await form_of(request)
        username = str(form.get("username", ""))
        if not self._csrf_ok(request, str(form.get("csrf", ""))):
            return self._login_page(request, target, i18n.gettext(
                "The sign-in form has expired: please try again"), username, 400)
        if not self.sign_in_limit.allow(_address(request)):
            return self._login_page(request, target, i18n.gettext(
                "Too many attempts: wait a minute and try again"), username, 429)
        token = await run_in_threadpool(self._sign_in, request, username,
                                        str(form.get("password", "")))
        if token is None:
            return self._login_page(request, target, i18n.gettext(
                "Wrong username or password, or the account is locked"), username, 401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_MINUTES * 60,
                            httponly=True, samesite="strict", secure=self.secure, path="/ui")
        # A new CSRF token for the session: none seen before signing in stays good.
        response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), httponly=True,
                            samesite="strict", secure=self.secure, path="/ui")
        return response

    def _sign_in(self, request: Request, username: str, password: str) -> str | None:
        user: User | None = None
        with write_transaction(self.engine) as conn:
            try:
                user = authenticate(conn, username, password)
            except Unauthorized as refused:
                failure = refused.message
            else:
                append(conn, [Entry("login", f"user {user.username}", 0,
                                    source=_address(request), path="sign-in to the pages")])
        if user is None:
            self.auditor.later(Entry("login", f"user {username.strip().lower()[:100]}", 4,
                                     source=_address(request), detail=failure))
            return None
        # After the commit: the signing key may be created in a write of its own.
        return token_for(self.keys, user, "user/*.cruds patient/*.rs",
                         minutes=SESSION_MINUTES, session=True).token

    def _login_page(self, request: Request, target: str, error: str | None, username: str,
                    status: int = 200) -> Response:
        return self.render(request, "ui/login.html", {
            "error": error, "username": username, "next": target}, status=status)

    async def logout(self, request: Request) -> Response:
        form = await form_of(request)
        if not self._csrf_ok(request, str(form.get("csrf", ""))):
            return RedirectResponse("/ui/", status_code=303)
        token = request.cookies.get(SESSION_COOKIE)
        if token and self.sign_out is not None:
            # The token itself ends, not only the cookie: a copy of it is refused too.
            await run_in_threadpool(self.sign_out, f"Bearer {token}", _address(request))
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/ui")
        return response

    async def language(self, request: Request) -> Response:
        form = await form_of(request)
        chosen = str(form.get("locale", ""))
        response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
        if chosen in i18n.LOCALES:
            response.set_cookie(i18n.LANGUAGE_COOKIE, chosen, max_age=365 * 86400,
                                samesite="lax", secure=self.secure, path="/ui")
        return response

    # --- helpers ----------------------------------------------------------------------------

    def _locale(self, request: Request) -> str:
        return i18n.locale_of(request.cookies.get(i18n.LANGUAGE_COOKIE),
                              request.headers.get("accept-language"))

    def _csrf_ok(self, request: Request, submitted: str) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        given = request.headers.get("x-csrf-token") or submitted
        return bool(cookie) and secrets.compare_digest(cookie.encode(), given.encode())


async def _form_csrf(request: Request) -> str:
    if request.headers.get("x-csrf-token"):
        return ""
    form = await form_of(request)
    return str(form.get("csrf", ""))


def _safe_next(target: str | None) -> str:
    """Only our own pages: never an open redirect."""
    if not target:
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or "\\" in target:
        return "/ui/"
    return target


def _username(access: Access | None) -> str | None:
    if access is None:
        return None
    return access.subject.removeprefix("user ")


def _address(request: Request) -> str:
    return request.client.host if request.client else ""



async def form_of(request: Request) -> dict[str, str]:
    try:
        return parse_form(await request.body(), request.headers.get("content-type"))
    except FormError:
        return {}
