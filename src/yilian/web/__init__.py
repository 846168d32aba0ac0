"""The web UI: server-rendered Jinja2 pages (htmx where pages update in part); Chinese first,
English beside it."""

from __future__ import annotations

from pathlib import Path

from starlette.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
