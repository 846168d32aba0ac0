"""`yilian users`, `token`, `clients` and `audit`: accounts, access tokens, OAuth clients and the
audit trail, on the machine that holds the database (as `medplum login` or Keycloak's admin
CLI)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from yilian.auth.roles import Role

if TYPE_CHECKING:
    from sqlalchemy import Engine

users_app = typer.Typer(help="Sign-in accounts: users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="Access tokens.", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth clients: SMART apps and backend services.",
                          no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
console = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (YILIAN_DATABASE_URL)")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from standard input (for scripts)")]


def _engine(db: str | None) -> Engine:
    from yilian.config import Settings
    from yilian.kit.db import make_engine

    return make_engine(db or Settings().database_url)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _create(db: str | None, username: str, roles: list[tuple[Role, str]],
            fhir_user: str | None, password: str) -> None:
    from yilian.auth.service import create_user
    from yilian.errors import YilianError

    engine = _engine(db)
    try:
        with engine.begin() as conn:
            user = create_user(conn, username, password, roles, fhir_user=fhir_user)
    except YilianError as error:
        console.print(f"[red]{error.message}[/]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    held = ", ".join(f"{role.value} at {organization}" for role, organization in user.roles)
    console.print(f"[green]Created user {user.username}[/] ({held})")


@users_app.command("create")
def create(
    username: Annotated[str, typer.Option(help="Sign-in name: a-z, 0-9, . _ - @")],
    role: Annotated[list[Role], typer.Option(help="A role; repeat for several")],
    organization: Annotated[str, typer.Option(
        help="Where the roles are held: Organization/ID")],
    fhir_user: Annotated[str | None, typer.Option(
        help="The person's FHIR record: Practitioner/ID, Patient/ID (patients: required)")
    ] = None,
    password_stdin: PasswordStdin = False,
    db: DbOption = None,
) -> None:
    """Create a user holding roles at an organization; asks for the password."""
    _create(db, username, [(r, organization) for r in role], fhir_user,
            _password(password_stdin))


# The demo deployment's accounts (`make run`): one per role, at the demo hospital.
DEMO_ORGANIZATION = {"resourceType": "Organization", "id": "demo-hospital", "active": True,
                     "name": "医联演示医院 (Yilian Demo Hospital)",
                     "alias": ["Yilian Demo Hospital"]}
DEMO_PATIENT = {"resourceType": "Patient", "id": "demo-patient", "active": True,
                "name": [{"family": "张", "given": ["三"], "text": "张三"}],
                "gender": "male", "birthDate": "1980-05-01",
                "managingOrganization": {"reference": "Organization/demo-hospital"}}


def demo_accounts() -> list[tuple[str, str, Role, str | None]]:
    """(username, password, role, FHIR record) of each demo account."""
    return [(f"demo.{role.value}", f"demo-{role.value}-2026", role,
             "Patient/demo-patient" if role is Role.PATIENT else None) for role in Role]


@users_app.command("demo")
def create_demo(db: DbOption = None) -> None:
    """Create the demo hospital, a demo patient and one account per role (once), and print
    the accounts. For trying Yilian out, never for a deployment with real data."""
    from rich.table import Table

    from yilian.auth.service import create_user, find_user
    from yilian.fhir.messages import FhirRequest
    from yilian.fhir.router import FhirRouter
    from yilian.fhir.search.extract import extract_index_rows

    engine = _engine(db)
    try:
        router = FhirRouter(engine, indexer=extract_index_rows, audit=None)
        for resource in (DEMO_ORGANIZATION, DEMO_PATIENT):
            answer = router.handle(FhirRequest(
                "PUT", f"{resource['resourceType']}/{resource['id']}", resource=resource),
                "http://127.0.0.1:8000/fhir")
            if answer.status >= 400:
                console.print(f"[red]{resource['resourceType']}: {answer.body_bytes()!r}[/]")
                raise typer.Exit(1)
        table = Table(title="Demo accounts (演示账户) at Organization/demo-hospital")
        for column in ("username", "password", "role", "FHIR record"):
            table.add_column(column)
        with engine.begin() as conn:
            for username, password, role, record in demo_accounts():
                if find_user(conn, username) is None:
                    create_user(conn, username, password, [(role, "Organization/demo-hospital")],
                                fhir_user=record)
                table.add_row(username, password, role.value, record or "")
    finally:
        engine.dispose()
    console.print(table)


@users_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="Sign-in name")] = "admin",
    organization: Annotated[str, typer.Option(
        help="Where the role is held")] = "Organization/network",
    password_stdin: PasswordStdin = False,
    db: DbOption = None,
) -> None:
    """Create the first administrator of a new deployment."""
    _create(db, username, [(Role.ADMIN, organization)], None, _password(password_stdin))


@token_app.command("issue")
def issue_token(
    username: Annotated[str, typer.Option(help="The user the token acts for")],
    scopes: Annotated[str, typer.Option(
        help='SMART scopes, e.g. "user/*.rs" or "patient/Observation.rs"')],
    minutes: Annotated[int, typer.Option(help="Lifetime, 1 to 1,440 minutes")] = 60,
    db: DbOption = None,
) -> None:
    """Mint an access token from the server's own keys and print it (standard output)."""
    from yilian.auth.service import find_user, patient_context, token_for
    from yilian.auth.tokens import Keys
    from yilian.errors import YilianError
    from yilian.fhir.audit import Entry, append
    from yilian.kit.db import write_transaction

    engine = _engine(db)
    try:
        with engine.begin() as conn:
            user = find_user(conn, username)
            patient = patient_context(conn, user) if user is not None else None
        if user is None:
            console.print(f"[red]No active user '{username}'[/]")
            raise typer.Exit(1)
        issued = token_for(Keys(engine), user, scopes, minutes=minutes, patient=patient)
        with write_transaction(engine) as conn:  # a token minted off-line leaves its trace
            append(conn, [Entry("token", f"user {user.username}", 0,
                                path=f"yilian token issue --scopes {scopes}",
                                detail=f"valid {minutes} minutes")])
    except YilianError as error:
        console.print(f"[red]{error.message}[/]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"Token for {user.username}, valid until {issued.expires:%Y-%m-%d %H:%M} UTC:")
    print(issued.token)


@clients_app.command("create")
def create_client(
    client_id: Annotated[str, typer.Option("--id", help="The client_id apps send")],
    name: Annotated[str, typer.Option(help="Shown on the sign-in page")],
    scope: Annotated[str, typer.Option(
        help='The most its tokens may carry, e.g. "openid fhirUser offline_access user/*.rs"')],
    redirect_uri: Annotated[list[str] | None, typer.Option(
        help="An app's redirect URI (https, or loopback); repeat for several")] = None,
    jwks: Annotated[Path | None, typer.Option(
        help="A backend service's public keys (a JWKS file): it signs its assertions")] = None,
    db: DbOption = None,
) -> None:
    """Register an app (public, PKCE) or a backend service (private_key_jwt)."""
    import json

    from yilian.auth.oauth import register_client
    from yilian.errors import YilianError

    engine = _engine(db)
    try:
        keys = json.loads(jwks.read_text()) if jwks is not None else None
        with engine.begin() as conn:
            client = register_client(conn, client_id, name, scope=scope,
                                     redirect_uris=redirect_uri or [], jwks=keys)
    except (YilianError, OSError, ValueError) as error:
        console.print(f"[red]{getattr(error, 'message', error)}[/]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"[green]Registered client {client.client_id}[/] ({client.auth_method})")


@audit_app.command("head")
def audit_head(db: DbOption = None) -> None:
    """Print the trail's last link, SEQ:HASH, to keep elsewhere: `yilian audit verify
    --expect SEQ:HASH` later proves nothing up to it was removed."""
    from yilian.fhir.audit import head
    from yilian.kit.db import read_transaction

    engine = _engine(db)
    try:
        with read_transaction(engine) as conn:
            seq, digest = head(conn)
    finally:
        engine.dispose()
    print(f"{seq}:{digest}")


@audit_app.command("verify")
def audit_verify(
    db: DbOption = None,
    expect: Annotated[str | None, typer.Option(
        help="A SEQ:HASH printed by `yilian audit head` earlier: it must still be there")
    ] = None,
) -> None:
    """Walk the audit trail's hash chain: exit 0 if every entry is as written, else 1 with the
    first entry that was changed, removed or put in."""
    from yilian.fhir.audit import verify
    from yilian.kit.db import read_transaction

    anchor = None
    if expect is not None:
        seq, _, digest = expect.partition(":")
        if not seq.isascii() or not seq.isdigit() or len(digest) != 64:
            console.print("[red]--expect takes SEQ:HASH as `yilian audit head` prints it[/]")
            raise typer.Exit(2)
        anchor = (int(seq), digest)
    engine = _engine(db)
    try:
        with read_transaction(engine) as conn:
            checked, broken = verify(conn, expect=anchor)
    finally:
        engine.dispose()
    if broken is not None:
        console.print(f"[red]The audit trail is broken at entry {broken.seq}: it {broken.why}[/] "
                      f"({checked:,} entries before it are intact)")
        raise typer.Exit(1)
    console.print(f"[green]The audit trail is intact[/]: {checked:,} entries")
