"""The service's refusals: :class:`HTTPError` (a status, a one-line message, headers)."""

from __future__ import annotations

__all__ = ["HTTPError"]


class HTTPError(Exception):
    """A request edgecls refuses: its status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
