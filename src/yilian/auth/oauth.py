"""The OAuth 2.0 authorization server (Authlib), for SMART on FHIR apps and services.

    authorization code + PKCE (S256 only)   people, through the sign-in page (api.oauth_http)
    refresh token (rotated at every use)    with `offline_access` or `online_access`
    client credentials + JWT assertion      SMART backend services (RFC 7523 private_key_jwt)
    revocation (RFC 7009), introspection (RFC 7662)

Authlib runs the protocol (parameters, errors, PKCE); this module gives it our storage:
clients, codes and refresh tokens are rows (codes and refresh tokens as SHA-256 hashes),
access tokens are the JWTs of auth.tokens. Each endpoint call runs in one transaction,
made current for Authlib's callbacks through `_CONNECTION`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from yilian.auth.roles import masks_identifiers, organizations_of, within
from yilian.auth.service import User, find_user_by_pk, patient_context, reading_only
from yilian.auth.tables import auth_assertion, auth_client, auth_code, auth_refresh
from yilian.auth.tokens import Keys, Verifier, issue
from yilian.errors import BadRequest, Unauthorized
from yilian.fhir.access import Grant, parse_scopes, type_within
from yilian.kit.clock import utcnow
from yilian.kit.db import read_transaction, write_transaction

ASSERTION_ALGORITHMS = ["RS384", "ES384", "RS256", "ES256"]
ACCESS_MINUTES = 15
REFRESH_DAYS = 30
CODE_MINUTES = 5
# Client authentication: none (a public app, with PKCE) or a signed JWT (a backend service;
# SMART's and OpenID's name for RFC 7523 client assertions).
PUBLIC, PRIVATE_KEY_JWT = "none", "private_key_jwt"
# Scopes that are about the sign-in, not resources: kept when the client may ask for them.
SIGN_IN_SCOPES = frozenset({"openid", "fhirUser", "launch/patient", "offline_access",
                            "online_access"})
_CONNECTION: ContextVar[Connection] = ContextVar("oauth_connection")
# The token endpoint's public URL, the audience client assertions must name.
_TOKEN_URL: ContextVar[str] = ContextVar("oauth_token_url", default="")


def _conn() -> Connection:
    return _CONNECTION.get()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- requests ------------------------------------------------------------------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[Any]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[Any]]:
        return self._datalist


class OAuthRequest(OAuth2Request):  # type: ignore[misc]
    """An HTTP request as Authlib reads it, from what any framework hands over."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str],
                 query: Sequence[tuple[str, str]], form: Sequence[tuple[str, str]]) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload([*query, *form])

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


# --- clients -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    scope: str  # the most its tokens may carry
    auth_method: str  # PUBLIC or PRIVATE_KEY_JWT
    jwks: dict[str, Any] | None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may ask for (resource scopes within its own)."""
        mine = self.scope.split()
        ceiling = parse_scopes(self.scope)
        kept = [s for s in (scope or "").split()
                if (s in SIGN_IN_SCOPES and s in mine) or _within(parse_scopes(s), ceiling)]
        return " ".join(dict.fromkeys(kept))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # no shared secrets: public clients use PKCE, services sign assertions

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return self.auth_method == PRIVATE_KEY_JWT
        return grant_type in ("authorization_code", "refresh_token") and bool(self.redirect_uris)


def _within(requested: tuple[Grant, ...], ceiling: tuple[Grant, ...]) -> bool:
    return bool(requested) and all(
        any(c.context == g.context and type_within(g.res_type, c.res_type)
            and g.interactions <= c.interactions for c in ceiling)
        for g in requested)


def register_client(conn: Connection, client_id: str, name: str, *, scope: str,
                    redirect_uris: Sequence[str] = (), jwks: Mapping[str, Any] | None = None
                    ) -> Client:
    """A SMART app (redirect URIs, public: PKCE) or a backend service (a JWKS of public keys
    it signs its assertions with)."""
    if not redirect_uris and jwks is None:
        raise BadRequest("YL-4040", "A client needs redirect URIs (an app) or a JWKS (a "
                         "backend service)")
    for uri in redirect_uris:
        if not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            raise BadRequest("YL-4041", f"Redirect URI '{uri}' must be https (or loopback)")
    if jwks is not None:
        try:
            KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        except Exception as error:
            raise BadRequest("YL-4042", f"The JWKS cannot be read: {error}") from error
    if conn.execute(select(auth_client.c.client_id)
                    .where(auth_client.c.client_id == client_id)).first():
        raise BadRequest("YL-4043", f"The client id '{client_id}' is taken")
    method = PRIVATE_KEY_JWT if jwks is not None else PUBLIC
    conn.execute(insert(auth_client).values(
        client_id=client_id, name=name, redirect_uris="\n".join(redirect_uris), scope=scope,
        auth_method=method, jwks=json.dumps(jwks) if jwks is not None else None,
        created=utcnow()))
    return Client(client_id, name, tuple(redirect_uris), scope, method,
                  dict(jwks) if jwks is not None else None)


def load_client(conn: Connection, client_id: str) -> Client | None:
    row = conn.execute(select(auth_client).where(auth_client.c.client_id == client_id)).first()
    if row is None:
        return None
    return Client(row.client_id, row.name, tuple(u for u in row.redirect_uris.split("\n") if u),
                  row.scope, row.auth_method, json.loads(row.jwks) if row.jwks else None)


# --- codes and refresh tokens ------------------------------------------------------------------


@dataclass(frozen=True)
class _Code:
    code_hash: str
    user_pk: int
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class _Refresh:
    token_hash: str
    client_id: str
    user_pk: int
    scope: str
    expires: datetime
    revoked: bool

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.expires - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.expires <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked


def _refresh(token: str) -> _Refresh | None:
    """The refresh token's row, locked until the transaction ends (rotation: two uses at the
    same moment must not both succeed)."""
    row = _conn().execute(select(auth_refresh).where(
        auth_refresh.c.token_hash == _digest(token)).with_for_update()).first()
    if row is None:
        return None
    return _Refresh(row.token_hash, row.client_id, row.user_pk, row.scope, row.expires,
                    row.revoked)


class _Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, and required of every authorization request (SMART v2)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012  (Authlib's declaration)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        if not grant.request.payload.data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE (S256) is required")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: _Code) -> str:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: _Code) -> str:
        return authorization_code.code_challenge_method


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [PUBLIC, PRIVATE_KEY_JWT]  # noqa: RUF012

    def save_authorization_code(self, code: str, request: OAuthRequest) -> None:
        data = request.payload.data
        _conn().execute(insert(auth_code).values(
            code_hash=_digest(code), client_id=request.client.client_id,
            user_pk=request.user.pk, redirect_uri=request.payload.redirect_uri or "",
            scope=request.payload.scope or "", code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method") or "S256",
            expires=utcnow() + timedelta(minutes=CODE_MINUTES)))

    def query_authorization_code(self, code: str, client: Client) -> _Code | None:
        # Locked until the exchange commits: a second exchange of the code waits, then finds
        # it gone (a code is good once, even when two arrive at the same moment).
        row = _conn().execute(select(auth_code).where(
            auth_code.c.code_hash == _digest(code), auth_code.c.client_id == client.client_id,
            auth_code.c.expires > utcnow()).with_for_update()).first()
        if row is None:
            return None
        return _Code(row.code_hash, row.user_pk, row.redirect_uri, row.scope,
                     row.code_challenge, row.code_challenge_method)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        _conn().execute(delete(auth_code).where(
            auth_code.c.code_hash == authorization_code.code_hash))

    def authenticate_user(self, authorization_code: _Code) -> User | None:
        return find_user_by_pk(_conn(), authorization_code.user_pk)


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [PUBLIC, PRIVATE_KEY_JWT]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: a stolen, used token is worth nothing

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        found = _refresh(refresh_token)
        if found is None or found.is_revoked() or found.is_expired():
            return None
        return found

    def authenticate_user(self, refresh_token: _Refresh) -> User | None:
        return find_user_by_pk(_conn(), refresh_token.user_pk)

    def revoke_old_credential(self, refresh_token: _Refresh) -> None:
        _conn().execute(update(auth_refresh).where(
            auth_refresh.c.token_hash == refresh_token.token_hash).values(revoked=True))


class _ServiceGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [PRIVATE_KEY_JWT]  # noqa: RUF012


class _Assertion(JWTBearerClientAssertion):  # type: ignore[misc]
    """SMART backend services authenticate with a JWT signed by one of their keys, with
    RS384 or ES384 (SMART's two), or RS256/ES256."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError as error:
            raise InvalidClientError(description=error.description) from error
        self.verify_claims(token.claims)
        return token.claims

    def get_audiences(self) -> list[str]:
        return [_TOKEN_URL.get()]

    def validate_jti(self, claims: Mapping[str, Any], jti: str) -> bool:
        key = f"{claims['sub']} {jti}"
        if len(key) > 300:
            return False  # longer than any key this server keeps: refused as unusable
        try:
            expires = datetime.fromtimestamp(int(claims.get("exp", 0)), tz=utcnow().tzinfo)
        except (OverflowError, ValueError, OSError):
            return False
        conn = _conn()
        conn.execute(delete(auth_assertion).where(auth_assertion.c.expires < utcnow()))
        try:
            with conn.begin_nested():
                conn.execute(insert(auth_assertion).values(key=key, expires=expires))
        except IntegrityError:
            return False  # a replayed assertion
        return True

    def resolve_client_public_key(self, client: Client) -> KeySet:
        return KeySet.import_key_set(client.jwks or {"keys": []})  # type: ignore[arg-type]


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [PUBLIC, PRIVATE_KEY_JWT]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Refresh | None:
        # Access tokens live minutes and are checked without the database: refresh tokens
        # are what revocation withdraws.
        return _refresh(token_string)

    def revoke_token(self, token: _Refresh, request: OAuthRequest) -> None:
        _conn().execute(update(auth_refresh).where(
            auth_refresh.c.token_hash == token.token_hash).values(revoked=True))


@dataclass(frozen=True)
class _Access:
    """A checked access token's claims, as introspection asks of a token."""

    claims: dict[str, Any]

    def is_expired(self) -> bool:
        return False  # checked when it was read

    def is_revoked(self) -> bool:
        return False


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [PRIVATE_KEY_JWT]  # noqa: RUF012

    def __init__(self, server: AuthorizationServer) -> None:
        super().__init__(server)
        self._verify = Verifier(server.keys)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        refresh = _refresh(token_string)
        if refresh is not None:
            return refresh
        try:
            return _Access(self._verify.claims(f"Bearer {token_string}"))
        except Unauthorized:
            return None

    def check_permission(self, token: Any, client: Client, request: OAuthRequest) -> bool:
        """Access tokens: any service that signs in (a resource server checking what it is
        shown); refresh tokens: only the client they were issued to."""
        return not isinstance(token, _Refresh) or token.client_id == client.client_id

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token, _Refresh):
            if token.is_revoked() or token.is_expired():
                return {"active": False}
            user = find_user_by_pk(_conn(), token.user_pk)
            return {"active": True, "token_type": "refresh_token", "scope": token.scope,
                    "client_id": token.client_id, "username": user.username if user else None,
                    "exp": int(token.expires.timestamp())}
        claims = token.claims
        return {"active": True, "token_type": "Bearer", "scope": claims.get("scope"),
                "username": claims.get("sub"), "exp": claims.get("exp"),
                "iat": claims.get("iat"), "iss": claims.get("iss"),
                **{name: claims[name] for name in ("patient", "fhirUser") if claims.get(name)}}


# --- the server ----------------------------------------------------------------------------------


class AuthorizationServer(_AuthorizationServer):  # type: ignore[misc]
    def __init__(self, engine: Engine, keys: Keys) -> None:
        super().__init__(scopes_supported=None)
        self.engine = engine
        self.keys = keys
        self.register_grant(_CodeGrant, [_Pkce(required=True)])
        self.register_grant(_RefreshGrant)
        self.register_grant(_ServiceGrant)
        self.register_client_auth_method(PRIVATE_KEY_JWT, _Assertion())
        self.register_endpoint(_Revocation)
        self.register_endpoint(_Introspection(self))
        self.register_token_generator("default", self._generate)

    @contextmanager
    def transaction(self, token_url: str = "", *, write: bool = True) -> Iterator[Connection]:
        """One transaction for one endpoint call, current for Authlib's callbacks (with the
        public URL of the token endpoint, which client assertions must name)."""
        self.keys.signing()  # the signing key exists before the transaction takes the lock
        begin = write_transaction if write else read_transaction
        with begin(self.engine) as conn:
            reset = _CONNECTION.set(conn), _TOKEN_URL.set(token_url)
            try:
                yield conn
            finally:
                _CONNECTION.reset(reset[0])
                _TOKEN_URL.reset(reset[1])

    def query_client(self, client_id: str) -> Client | None:
        return load_client(_conn(), client_id)

    def save_token(self, token: dict[str, Any], request: OAuthRequest) -> None:
        pass  # refresh tokens are saved as they are made (`_generate`); access tokens never

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: OAuthRequest) -> OAuthRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any
                        ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers)

    def _generate(self, grant_type: str, client: Client, user: User | None = None,
                  scope: str | None = None, expires_in: int | None = None,
                  include_refresh_token: bool = True) -> dict[str, Any]:
        """An access token (JWT) with the scopes the client, and the user's roles, allow;
        a refresh token when `offline_access`/`online_access` was granted."""
        scope = client.get_allowed_scope(scope)  # never more than the client may have
        asked = scope.split()
        grants = parse_scopes(scope)
        patient = patient_context(_conn(), user) if user is not None else None
        if user is not None:
            grants = within(grants, {role for role, _ in user.roles})
            if (user.fhir_user or "").startswith("RelatedPerson/"):
                grants = reading_only(grants)
        elif grant_type == "client_credentials":
            grants = tuple(g for g in grants if g.context == "system")
        resource_scope = " ".join(g.text() for g in grants)
        subject = user.username if user is not None else f"client:{client.client_id}"
        access = issue(self.keys, subject=subject, scope=resource_scope,
                       fhir_user=user.fhir_user if user else None,
                       patient=patient,
                       organizations=organizations_of(user.roles) if user else (),
                       masked=masks_identifiers(user.roles) if user else False,
                       minutes=ACCESS_MINUTES)
        kept = [s for s in asked if s in SIGN_IN_SCOPES]
        token: dict[str, Any] = {
            "token_type": "Bearer", "access_token": access.token,
            "expires_in": ACCESS_MINUTES * 60,
            "scope": " ".join([*kept, resource_scope]).strip(),
        }
        if patient is not None:
            token["patient"] = patient
        if user is not None and user.fhir_user:
            token["fhirUser"] = user.fhir_user
        if (user is not None and include_refresh_token
                and {"offline_access", "online_access"} & set(asked)):
            refresh = secrets.token_urlsafe(32)
            _conn().execute(insert(auth_refresh).values(
                token_hash=_digest(refresh), client_id=client.client_id, user_pk=user.pk,
                scope=scope, expires=utcnow() + timedelta(days=REFRESH_DAYS),
                revoked=False))
            token["refresh_token"] = refresh
        return token

