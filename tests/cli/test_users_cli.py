"""`yilian users create | create-admin` and `yilian token issue`, and the token at work."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient
from typer.testing import CliRunner

from yilian.api.app import create_app
from yilian.cli.main import app
from yilian.config import Settings

runner = CliRunner()


def test_accounts_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'users.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--db", db]).exit_code == 0
    made = runner.invoke(app, ["users", "create-admin", "--password-stdin", "--db", db],
                         input="admin-password-1\n")
    assert made.exit_code == 0, made.output
    made = runner.invoke(app, ["users", "create", "--username", "li", "--role", "doctor",
                               "--role", "trainee", "--organization", "Organization/zju1",
                               "--fhir-user", "Practitioner/li", "--db", db],
                         input="doctor-password-1\ndoctor-password-1\n")
    assert made.exit_code == 0, made.output
    assert "doctor at Organization/zju1" in made.output
    weak = runner.invoke(app, ["users", "create", "--username", "weak", "--role", "nurse",
                               "--organization", "Organization/zju1", "--password-stdin",
                               "--db", db], input="123\n")
    assert weak.exit_code == 1 and "at least" in weak.output
    issued = runner.invoke(app, ["token", "issue", "--username", "li", "--scopes",
                                 "user/Patient.rs", "--minutes", "5", "--db", db])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    refused = runner.invoke(app, ["token", "issue", "--username", "li", "--scopes",
                                  "system/*.cruds", "--db", db])
    assert refused.exit_code == 1
    nobody = runner.invoke(app, ["token", "issue", "--username", "ghost", "--scopes",
                                 "user/*.rs", "--db", db])
    assert nobody.exit_code == 1

    server = create_app(Settings(database_url=db))
    with TestClient(server) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/fhir/Patient", headers=bearer).status_code == 200
        assert client.get("/fhir/Observation", headers=bearer).status_code == 403
        assert client.get("/fhir/Patient").status_code == 401


def test_clients_from_the_command_line(tmp_path: Path) -> None:
    import json

    from joserfc.jwk import RSAKey

    db = f"sqlite:///{tmp_path / 'clients.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--db", db]).exit_code == 0
    made = runner.invoke(app, ["clients", "create", "--id", "ward-app", "--name", "病区 App",
                               "--scope", "openid user/*.rs", "--redirect-uri",
                               "https://ward.example/cb", "--db", db])
    assert made.exit_code == 0, made.output
    assert "Registered client ward-app (none)" in made.output
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}))
    service = runner.invoke(app, ["clients", "create", "--id", "lis", "--name", "LIS",
                                  "--scope", "system/Observation.cruds", "--jwks", str(jwks),
                                  "--db", db])
    assert service.exit_code == 0 and "(private_key_jwt)" in service.output
    for bad in (["--redirect-uri", "http://ward.example/cb"], ["--jwks", str(tmp_path)], []):
        refused = runner.invoke(app, ["clients", "create", "--id", "x", "--name", "X",
                                      "--scope", "user/*.rs", *bad, "--db", db])
        assert refused.exit_code == 1, refused.output


def test_demo_accounts_one_per_role(tmp_path: Path) -> None:
    from yilian.auth.roles import Role

    db = f"sqlite:///{tmp_path / 'demo.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--db", db]).exit_code == 0
    first = runner.invoke(app, ["users", "demo", "--db", db])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["users", "demo", "--db", db])  # every `make run`
    assert again.exit_code == 0 and again.output == first.output
    for role in Role:
        assert f"demo.{role.value}" in first.output
    issued = runner.invoke(app, ["token", "issue", "--username", "demo.patient", "--scopes",
                                 "patient/*.rs", "--db", db])
    token = issued.stdout.strip().splitlines()[-1]
    server = create_app(Settings(database_url=db))
    with TestClient(server) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        mine = client.get("/fhir/Patient/demo-patient", headers=bearer)
        assert mine.status_code == 200 and mine.json()["name"][0]["text"] == "张三"
        assert client.get("/fhir/Organization/demo-hospital", headers=bearer).status_code == 200
