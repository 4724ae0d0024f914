"""The one conversion of a moment to a protobuf Timestamp, for every servicer."""

from __future__ import annotations

from datetime import datetime
from typing import overload

from google.protobuf.timestamp_pb2 import Timestamp


@overload
def to_timestamp(moment: datetime) -> Timestamp: ...
@overload
def to_timestamp(moment: None) -> None: ...
@overload
def to_timestamp(moment: datetime | None) -> Timestamp | None: ...
def to_timestamp(moment: datetime | None) -> Timestamp | None:
    """`moment` as a Timestamp; None (the field left unset) for None."""
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
