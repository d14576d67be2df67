"""The gateway: REST API, WebSocket push and the live dashboard over a wired ``Core``."""

from sysmonstm.gateway.app import create_app
from sysmonstm.gateway.server import serve_gateway

__all__ = ["create_app", "serve_gateway"]
