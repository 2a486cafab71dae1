"""The service layer: one function per use case, `(runtime, principal, input) -> view model`, or a
typed error. Every entry point (CLI, HTTP API, web pages, codec server) calls these and only renders
what comes back; every rule they apply is `domain/`'s."""

from amiflow.services.errors import NotFound, ReadRefused, Refused, ServiceError, Unauthenticated
from amiflow.services.principal import Principal

__all__ = ["NotFound", "Principal", "ReadRefused", "Refused", "ServiceError", "Unauthenticated"]
