"""Tests of the `python -m sandbox` command line's options (the system itself: test_system.py)."""

from __future__ import annotations

from sandbox.__main__ import build_parser, system_options


def test_faceit_flags_are_passed_to_the_faceit_sandbox() -> None:
    """`--webhook-retries 0 --fill-rosters` start the FACEIT sandbox with those flags."""
    args = build_parser().parse_args(["--webhook-retries", "0", "--fill-rosters"])
    assert system_options(args).faceit_args == ("--webhook-retries", "0", "--fill-rosters")


def test_without_faceit_flags_the_faceit_sandbox_keeps_its_defaults() -> None:
    """No FACEIT flags given: the FACEIT sandbox gets no extra arguments."""
    assert system_options(build_parser().parse_args([])).faceit_args == ()


def test_links_are_verified_with_faceit_unless_nickname_is_asked_for() -> None:
    """By default players sign in with FACEIT; `--link-verification nickname` links unverified."""
    default = system_options(build_parser().parse_args([]))
    nickname = system_options(build_parser().parse_args(["--link-verification", "nickname"]))
    assert (default.link_verification, nickname.link_verification) == ("faceit_oauth", "nickname")


def test_one_voice_replica_unless_more_are_asked_for() -> None:
    """By default one voice process; `--voice-replicas 2` starts a standby beside it."""
    default = system_options(build_parser().parse_args([]))
    two = system_options(build_parser().parse_args(["--voice-replicas", "2"]))
    assert (default.voice_replicas, two.voice_replicas) == (1, 2)
