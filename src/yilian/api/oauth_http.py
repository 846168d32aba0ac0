"""The sign-in endpoints over HTTP (the protocol is auth.oauth):

    GET  /auth/authorize    the sign-in page of the authorization-code flow (PKCE)
    POST /auth/authorize    username and password; on success back to the app with a code
    POST /auth/token        codes, refresh tokens and client assertions → tokens
    POST /auth/revoke       RFC 7009        POST /auth/introspect   RFC 7662
    POST /auth/break-glass  a staff member opens a patient's records for an emergency

The sign-in form carries a CSRF token that must equal a SameSite cookie's; sign-in and token
requests are rate limited per address.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from yilian.auth.emergency import open_emergency
from yilian.auth.oauth import AuthorizationServer, Client, OAuthRequest
from yilian.auth.service import authenticate
from yilian.auth.tokens import Verifier
from yilian.errors import Unauthorized, YilianError
from yilian.fhir.audit import Auditor, Entry, append
from yilian.kit.clock import to_instant
from yilian.kit.db import write_transaction
from yilian.kit.ratelimit import RateLimiter
from yilian.web import templates

_CSRF_COOKIE = "yl_csrf"
_FORM = "application/x-www-form-urlencoded"
_MAX_FORM_BYTES = 64 * 1024  # a client assertion or a sign-in: never more than a few KB


@dataclass
class OAuthEndpoints:
    server: AuthorizationServer
    public_root: str | None  # https://host (from YILIAN_BASE_URL), else from each request
    fhir_base: str | None
    sign_in_limit: RateLimiter
    token_limit: RateLimiter
    audit: Auditor
    verifier: Verifier

    def routes(self) -> list[Route]:
        return [
            Route("/auth/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/auth/token", self.token, methods=["POST"]),
            Route("/auth/revoke", self.revoke, methods=["POST"]),
            Route("/auth/introspect", self.introspect, methods=["POST"]),
            Route("/auth/break-glass", self.break_glass, methods=["POST"]),
        ]

    def _root(self, request: Request) -> str:
        return self.public_root or str(request.base_url).rstrip("/")

    def _oauth_request(self, request: Request, query: list[tuple[str, str]],
                       form: list[tuple[str, str]]) -> OAuthRequest:
        uri = f"{self._root(request)}{request.url.path}"
        return OAuthRequest(request.method, uri, dict(request.headers), query, form)

    def _insecure(self, request: Request) -> Response | None:
        """OAuth only over https (or on a loopback address, for development)."""
        if is_secure_transport(f"{self._root(request)}/auth"):
            return None
        return _oauth_error(400, "insecure_transport", "Sign-in needs https: set "
                            "YILIAN_BASE_URL to the server's https address")

    # --- the sign-in page ------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        if (refused := self._insecure(request)) is not None:
            return refused
        if request.method == "GET":
            query = list(request.query_params.multi_items())
            return await run_in_threadpool(self._sign_in_page, request, query, None, "")
        form = await _form(request)
        if form is None:
            return _oauth_error(400, "invalid_request", f"Send the form as {_FORM}")
        fields = dict(form)
        query = parse_qsl(fields.get("request", ""), keep_blank_values=True)
        cookie = request.cookies.get(_CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, fields.get("csrf", "")):
            return _oauth_error(400, "invalid_request",
                                "The sign-in form has expired: open the page again")
        if not self.sign_in_limit.allow(_address(request)):
            return _too_many()
        return await run_in_threadpool(self._sign_in, request, query,
                                       fields.get("username", ""), fields.get("password", ""))

    def _sign_in_page(self, request: Request, query: list[tuple[str, str]],
                      error: str | None, username: str, status: int = 200) -> Response:
        with self.server.transaction(write=False):
            found = self._consent(request, query)
        if isinstance(found, Response):
            return found
        _, client, scope = found
        csrf = request.cookies.get(_CSRF_COOKIE) or secrets.token_urlsafe(24)
        page = templates.TemplateResponse(request, "auth/login.html", {
            "client": client, "scopes": scope.split(), "error": error, "username": username,
            "csrf": csrf, "request_query": urlencode(query), "action": "/auth/authorize",
        }, status_code=status)
        page.set_cookie(_CSRF_COOKIE, csrf, httponly=True, samesite="strict",
                        secure=self._root(request).startswith("https://"), path="/auth")
        page.headers["Cache-Control"] = "no-store"
        page.headers["X-Frame-Options"] = "DENY"  # no sign-in page inside another's frame
        return page

    def _consent(self, request: Request, query: list[tuple[str, str]]
                 ) -> tuple[tuple[OAuthRequest, Any], Client, str] | Response:
        """The app and the scopes it asks for, or the error: back to the app when its
        redirect URI is known to be its own, else on a page of ours."""
        oauth = self._oauth_request(request, query, [])
        try:
            grant = self.server.get_consent_grant(oauth)
            audience = oauth.payload.data.get("aud")
            fhir_base = self.fhir_base or f"{self._root(request)}/fhir"
            if audience is not None and audience.rstrip("/") != fhir_base.rstrip("/"):
                raise _InvalidAudience(redirect_uri=grant.redirect_uri,
                                       state=oauth.payload.state)
        except OAuth2Error as error:
            status, _, headers = error()
            location = dict(headers).get("Location")
            if location:
                return RedirectResponse(location, status_code=302)
            # No redirect URI known to be the app's: say so here, never send the user on.
            return templates.TemplateResponse(request, "auth/login.html", {
                "client": None, "error": f"{error.error}: {error.description or ''}"},
                status_code=status)
        client: Client = grant.client
        return (oauth, grant), client, client.get_allowed_scope(oauth.payload.scope)

    def _sign_in(self, request: Request, query: list[tuple[str, str]], username: str,
                 password: str) -> Response:
        with self.server.transaction() as conn:
            found = self._consent(request, query)
            if isinstance(found, Response):
                return found
            (oauth, grant), _, _ = found
            try:
                user = authenticate(conn, username, password)
            except Unauthorized as refused:
                failure = refused.message
            else:
                status, _, headers = self.server.create_authorization_response(
                    oauth, grant_user=user, grant=grant)
                append(conn, [Entry("login", f"user {user.username}", 0,
                                    source=_address(request),
                                    path=f"sign-in for {oauth.payload.client_id}")])
                return RedirectResponse(dict(headers)["Location"], status_code=status)
        self.audit.later(Entry("login", f"user {username.strip().lower()[:100]}", 4,
                               source=_address(request), detail=failure))
        # The failed attempt is committed (it counts towards the lockout) before answering.
        return self._sign_in_page(request, query, f"用户名或密码错误，或账户已锁定。 {failure}",
                                  username, status=401)

    # --- token, revocation, introspection ---------------------------------------------------------

    async def token(self, request: Request) -> Response:
        if not self.token_limit.allow(_address(request)):
            return _too_many()
        return await self._endpoint(request, None)

    async def revoke(self, request: Request) -> Response:
        return await self._endpoint(request, "revocation")

    async def introspect(self, request: Request) -> Response:
        return await self._endpoint(request, "introspection")

    async def _endpoint(self, request: Request, name: str | None) -> Response:
        if (refused := self._insecure(request)) is not None:
            return refused
        form = await _form(request)
        if form is None:
            return _oauth_error(400, "invalid_request", f"Send the form as {_FORM}")
        oauth = self._oauth_request(request, [], form)
        token_url = f"{self._root(request)}/auth/token"

        def run() -> Any:
            with self.server.transaction(token_url=token_url):
                if name is None:
                    return self.server.create_token_response(oauth)
                return self.server.create_endpoint_response(name, oauth)

        status, body, headers = await run_in_threadpool(run)
        if name is None:  # a token issued or refused: by whom, for which client
            client = getattr(oauth, "client", None)
            self.audit.later(Entry(
                "token", f"client:{client.client_id}" if client else "anonymous",
                0 if status == 200 else 4, source=_address(request),
                path=f"grant_type={dict(form).get('grant_type', '')}",
                detail="" if status == 200 else str(body.get("error", ""))))
        response = JSONResponse(body, status_code=status, headers=dict(headers))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response


    # --- break the glass ------------------------------------------------------------------------

    async def break_glass(self, request: Request) -> Response:
        """POST patient=ID&reason=...&minutes=60 with the staff member's bearer token: that
        patient's records open to them until the answer's `expires`."""
        try:
            access = self.verifier(request.headers.get("authorization"))
        except Unauthorized as error:
            return _oauth_error(401, "invalid_token", error.message)
        form = await _form(request)
        if form is None:
            return _oauth_error(400, "invalid_request", f"Send the form as {_FORM}")
        fields = dict(form)
        patient = fields.get("patient", "").removeprefix("Patient/")
        reason, minutes = fields.get("reason", ""), fields.get("minutes", "60")

        def run() -> str:
            with write_transaction(self.server.engine) as conn:
                expires = open_emergency(conn, access, patient, reason,
                                         int(minutes) if _small_number(minutes) else 0)
                append(conn, [Entry("break-glass", access.subject, 0,
                                    source=_address(request), entities=(f"Patient/{patient}",),
                                    detail=f"emergency access: {reason.strip()}")])
            return to_instant(expires)

        try:
            expires = await run_in_threadpool(run)
        except YilianError as error:
            return JSONResponse(error.to_outcome(), status_code=error.http_status)
        return JSONResponse({"patient": f"Patient/{patient}", "expires": expires})


class _InvalidAudience(OAuth2Error):  # type: ignore[misc]
    error = "invalid_request"
    description = "'aud' must be this server's FHIR base URL"


async def _form(request: Request) -> list[tuple[str, str]] | None:
    """The form's fields; None when it is not a form, or larger than any sign-in needs."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != _FORM:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return None

    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None


def _small_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 6


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def _too_many() -> Response:
    response = _oauth_error(429, "slow_down", "Too many attempts from this address: wait a "
                            "minute")
    response.headers["Retry-After"] = "60"
    return response
