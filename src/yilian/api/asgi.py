"""The ASGI application for servers: settings from the environment (YILIAN_*)."""

from yilian.api.app import create_app

app = create_app()
