"""Settings, read from the environment (prefix YILIAN_) and passed explicitly, never global."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YILIAN_", frozen=True)

    database_url: str = Field(
        default="sqlite:///./yilian.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str | None = Field(
        default=None,
        description="Public base of the FHIR endpoint for links and Location headers; "
        "derived from the request when unset",
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, description="Largest request body accepted (413 above it)"
    )
    default_page_size: int = 20
    max_page_size: int = 1000
    validate_resources: bool = Field(
        default=True, description="Validate every write against the R4 StructureDefinitions"
    )
    auth: bool = Field(
        default=True,
        description="Access control: every /fhir request needs an access token. "
        "YILIAN_AUTH=off turns it off, for local experiments only",
    )
    workers: int = 1
    audit_recorder: Literal["process", "thread"] = Field(
        default="process",
        description="Who appends the audit entries of reads, searches and sign-ins: a "
        "recorder process beside each server process, or a thread of the server (which "
        "shares the GIL with the requests); a write's entry always goes in its transaction",
    )
    threads: int | None = Field(
        default=None,
        description="Worker threads per process for database work (default: 2 on SQLite, "
        "8 on PostgreSQL); more only fight over the GIL",
    )
