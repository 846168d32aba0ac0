"""A ceiling app served as `yilian serve` serves Yilian (yilian.kit.http_server.run: the same
uvicorn settings and HTTP protocol), so that a ceiling measures the stack we run.

    python -m bench.serve_app bench.ceiling_app:app 127.0.0.1 8001
"""

from __future__ import annotations

import sys

from yilian.kit.http_server import run

if __name__ == "__main__":
    app, host, port = sys.argv[1:4]
    run(app, host=host, port=int(port))
