"""The HTTP gateway: the app factory and cross-cutting HTTP concerns."""

from credit_commons.gateway.app import create_app

__all__ = ["create_app"]
