"""Request parsers and validators shared by the REST and control routes (Discord's 50035/50109)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.discord import permissions as perm
from sandbox.discord.permissions import Overwrite
from sandbox.discord.responses import invalid_form, invalid_json


def snowflake(value: Any, field: str) -> int:
    """Parse a snowflake (int or digit string) or fail with 50035."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid_form(
            field, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.'
        ) from None
    if number < 0 or number >= 1 << 64:
        raise invalid_form(field, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    return number


def bits(value: Any, field: str) -> int:
    """Parse a permission bit set given as int, digit string or null."""
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_form(field, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.') from None


def check_name(body: dict[str, Any], *, required: bool) -> str | None:
    """A channel name of 1 to 100 characters (50035 otherwise)."""
    if "name" not in body:
        if required:
            raise invalid_form("name", "BASE_TYPE_REQUIRED", "This field is required")
        return None
    name = body["name"]
    if not isinstance(name, str):
        raise invalid_form("name", "BASE_TYPE_STRING", "Must be a string.")
    if not 1 <= len(name) <= 100:
        raise invalid_form("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return name


def parse_overwrites(raw: Any) -> list[Overwrite]:
    """Overwrites from a request (ids and bits as ints or strings)."""
    if not isinstance(raw, list):
        raise invalid_form("permission_overwrites", "BASE_TYPE_LIST", "Must be a list.")
    overwrites = []
    for index, item in enumerate(raw):
        field = f"permission_overwrites.{index}"
        if not isinstance(item, dict):
            raise invalid_form(field, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        ow_type = item.get("type")
        if ow_type not in (perm.ROLE_OVERWRITE, perm.MEMBER_OVERWRITE):
            raise invalid_form(f"{field}.type", "BASE_TYPE_CHOICES", "Value must be one of (0, 1).")
        overwrites.append(
            Overwrite(
                id=snowflake(item.get("id"), f"{field}.id"),
                type=ow_type,
                allow=bits(item.get("allow"), f"{field}.allow"),
                deny=bits(item.get("deny"), f"{field}.deny"),
            )
        )
    return overwrites


async def read_payload(request: web.Request) -> dict[str, Any]:
    """A JSON object body, or the `payload_json` field of a urlencoded or multipart form."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        raw = form.get("payload_json")
        if raw is None:
            raise invalid_form("payload_json", "BASE_TYPE_REQUIRED", "This field is required")
        if isinstance(raw, str):
            text = raw
        elif isinstance(raw, bytes | bytearray):
            text = bytes(raw).decode()
        else:
            text = raw.file.read().decode()
    else:
        text = await request.text()
    return _json_object(text)


async def read_object(request: web.Request) -> dict[str, Any]:
    """The JSON object body of a request (50109 if it is not a JSON object)."""
    return _json_object(await request.text())


async def read_json(request: web.Request) -> Any:
    """The JSON body of a request, of any type (50109 if it is not JSON)."""
    text = await request.text()
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise invalid_json() from None


def _json_object(text: str) -> dict[str, Any]:
    """Parse a body that must be a JSON object; an empty one reads as `{}`."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise invalid_json() from None
    if not isinstance(data, dict):
        raise invalid_json()
    return data
