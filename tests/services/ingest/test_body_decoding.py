"""Decoding a webhook body: the standard library's reading of JSON, whichever decoder does it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.events import decode_body


def _outcome(decode: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "value", decode(raw)
    except RecursionError:
        return "refused", RecursionError
    except ValueError:
        return "refused", ValueError


def _same(left: Any, right: Any) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0, NaN is NaN)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right)


def _assert_read_as_json_reads(raw: bytes) -> None:
    expected, got = _outcome(json.loads, raw), _outcome(decode_body, raw)
    assert expected[0] == got[0], (raw[:200], expected, got)
    if expected[0] == "refused":
        assert expected[1] is got[1], (raw[:200], expected, got)
    else:
        assert _same(expected[1], got[1]), (raw[:200], expected, got)


NUMBER = r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?"
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(codec=None), max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(value=_values, ascii_only=st.booleans())
def test_any_json_value_is_read_as_the_standard_library_reads_it(
    value: Any, ascii_only: bool
) -> None:
    """Every JSON text (big integers, NaN, lone surrogates included) decodes as json.loads does."""
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    _assert_read_as_json_reads(raw)


@settings(max_examples=400, deadline=None)
@given(number=st.from_regex(NUMBER, fullmatch=True))
def test_any_number_literal_is_read_as_the_standard_library_reads_it(number: str) -> None:
    """Integers past 64 bits stay exact integers, and floats round as json's do."""
    _assert_read_as_json_reads(b'{"n": ' + number.encode() + b"}")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": "\\ud800"}',
        b'{"a": "\xed\xa0\x80"}',
        b'{"a": "\xff"}',
        b'{"a": "\x01"}',
        b'{"a": NaN, "b": -Infinity}',
        b'\xef\xbb\xbf{"a": 1}',
        '{"a": "\u00e9"}'.encode("utf-16"),
        b'{"a": 123456789012345678901234567890}',
        b'{"a": -9223372036854775809}',
        b'{"a": 18446744073709551616}',
        b'{"a": 1e400, "b": 1e-400}',
        b'{"a": 1} x',
        b'{"a": [1,]}',
        b"[" * 1100 + b"]" * 1100,
        b"[" * 100000 + b"]" * 100000,
        b"",
    ],
    ids=[
        "repeated-key",
        "lone-surrogate-escape",
        "encoded-surrogate",
        "invalid-utf8",
        "control-character",
        "nan-infinity",
        "byte-order-mark",
        "utf16",
        "huge-integer",
        "below-64-bits",
        "past-64-bits",
        "float-overflow-underflow",
        "trailing-garbage",
        "trailing-comma",
        "deep",
        "very-deep",
        "empty",
    ],
)
def test_the_edges_of_json_are_read_as_the_standard_library_reads_them(raw: bytes) -> None:
    """Where decoders differ (surrogates, NaN, BOM, UTF-16, depth, 64 bits), json's reading wins."""
    _assert_read_as_json_reads(raw)
