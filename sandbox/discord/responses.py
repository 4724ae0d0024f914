"""JSON responses and errors shaped like Discord's (exact `Content-Type: application/json`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

JSON_TYPE = "application/json"


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON body with `Content-Type: application/json` exactly (py-cord needs that)."""
    all_headers = {"Content-Type": JSON_TYPE}
    if headers:
        all_headers.update(headers)
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


class DiscordError(Exception):
    """An error answer: HTTP status plus Discord's `{"code", "message", "errors"?}` body."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body Discord sends for this error."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def response(self) -> web.Response:
        """This error as an aiohttp response."""
        return json_response(self.body(), status=self.status)


def unauthorized() -> DiscordError:
    """401 for a missing or wrong token."""
    return DiscordError(401, 0, "401: Unauthorized")


def not_found() -> DiscordError:
    """404 for a route that does not exist."""
    return DiscordError(404, 0, "404: Not Found")


def missing_access() -> DiscordError:
    """403 / 50001: the bot cannot see the resource."""
    return DiscordError(403, 50001, "Missing Access")


def missing_permissions() -> DiscordError:
    """403 / 50013: the bot lacks a permission."""
    return DiscordError(403, 50013, "Missing Permissions")


def unknown(kind: str, code: int) -> DiscordError:
    """404 with one of the `Unknown X` codes (10003 channel, 10004 guild, 10007 member...)."""
    return DiscordError(404, code, f"Unknown {kind}")


def invalid_json() -> DiscordError:
    """400 / 50109: the body is not the JSON the route takes."""
    return DiscordError(400, 50109, "The request body contains invalid JSON.")


def invalid_form(field: str, code: str, message: str) -> DiscordError:
    """400 / 50035 Invalid Form Body with one field error."""
    return DiscordError(
        400,
        50035,
        "Invalid Form Body",
        {field: {"_errors": [{"code": code, "message": message}]}},
    )
