"""Yilian as `yilian serve` serves it, but with its audit trail off: a diagnostic of what
auditing every read costs. Never served outside the bench (every access must leave an audit
entry); settings from the environment (YILIAN_DATABASE_URL), as the server's.

    python -m bench.serve_app bench.unaudited_app:app 127.0.0.1 8002
"""

from __future__ import annotations

from yilian.api.asgi import app

app.state.router.audit = None  # reads and searches then leave no entry
