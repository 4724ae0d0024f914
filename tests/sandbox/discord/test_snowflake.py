"""Unit tests of the snowflake generator."""

from __future__ import annotations

from sandbox.discord.snowflake import SnowflakeGenerator, snowflake_time


def test_snowflakes_strictly_increase_within_one_millisecond() -> None:
    """Ids made at the same instant still differ and grow."""
    gen = SnowflakeGenerator(wall_clock=lambda: 1_700_000_000.0)
    ids = [gen.next() for _ in range(100)]
    assert ids == sorted(set(ids))


def test_snowflakes_encode_their_time_and_fit_64_bits() -> None:
    """A snowflake carries the creation time like Discord's, in a 64-bit int."""
    gen = SnowflakeGenerator(wall_clock=lambda: 1_700_000_000.5)
    flake = gen.next()
    assert snowflake_time(flake) == 1_700_000_000.5
    assert 1 << 59 < flake < 1 << 63
