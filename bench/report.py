"""Render `docs/benchmarks.md` from the results document of one run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

FINDINGS = Path(__file__).with_name("findings.md")


def _mark(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _targets(results: dict[str, Any]) -> list[str]:
    lines = ["| benchmark | target | measured | verdict |", "|---|---|---|---|"]
    for name, outcome in results["benchmarks"].items():
        for target in outcome.get("targets", {}).values():
            lines.append(
                f"| {name} | {target['target']} | {_fmt(target['value'])} "
                f"| {_mark(target['pass'])} |"
            )
    return lines


def webhook_ack_section(outcome: dict[str, Any]) -> list[str]:
    lines = [
        "## Webhook ack",
        "",
        "Authenticated `POST /faceit-webhook`, every body a distinct event, each stored in the"
        " inbox before the 200 (events of a hub outside `FACEIT_HUB_IDS`: the full insert,"
        " no delivery afterwards). Reference: `bench/bare_server.py`, a FastAPI app whose"
        " route reads the body and answers 200, served with ingest's uvicorn config (the"
        " httptools parser with ingest's guard, and its garbage collector settings) in its own"
        " process; ingest serves its webhook ahead of FastAPI's per-request machinery. Load"
        " from `bench/loadgen.py` in a separate process (aiohttp, loopback):"
        " open loop at the offered rate, latency from each request's scheduled send time;"
        " saturation is closed loop, in rounds alternating ingest and bare, and the row is the"
        " round with the median ratio. Steps alternate ingest and bare; before each step the"
        " server must answer `/healthz` within 20 ms again, so no step inherits the previous"
        " backlog.",
        "",
        "| load | ingest req/s | bare req/s | ratio | ingest p50 / p99 ms "
        "| bare p50 / p99 ms | ingest errors | CPU us per request, ingest / bare |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for step in outcome["steps"]:
        ingest, bare = step["ingest"], step["bare"]
        lines.append(
            f"| {step['load']} | {ingest['throughput_rps']} | {bare['throughput_rps']} "
            f"| {step['throughput_ratio']} "
            f"| {ingest['latency']['p50_ms']} / {ingest['latency']['p99_ms']} "
            f"| {bare['latency']['p50_ms']} / {bare['latency']['p99_ms']} "
            f"| {ingest['errors']} "
            f"| {step['cpu_us_per_request']['ingest']} / {step['cpu_us_per_request']['bare']} |"
        )
    saturation = outcome["steps"][-1]
    if "round_ratios" in saturation:
        each = ", ".join(str(r) for r in saturation["round_ratios"])
        lines += ["", f"Saturation ratio of each round, in order: {each}."]
    lines += ["", f"Inbox rows after the run: {outcome['inbox_rows']}.", ""]
    return lines


_PHASES = {
    "to_first_create": "webhook's 200 to the first channel create arriving",
    "creates": "creates (first arrival to last answer)",
    "creates_to_first_move": "last create answered to the first move arriving",
    "moves": "moves (first arrival to last answer)",
}


def end_to_end_section(outcome: dict[str, Any]) -> list[str]:
    sizes = outcome["sizes"]
    calls = outcome["samples"][0]["calls"] if outcome["samples"] else {}
    return [
        "## End to end",
        "",
        f"A ready webhook for a match of {sizes['players']} linked players, all waiting in the"
        f" lobby voice channel; every Discord REST call delayed {sizes['latency_s'] * 1000:g} ms"
        " by the sandbox. Measured from the webhook's 200 to the moment the sandbox answered"
        " the last successful move (its audit log's `answered_at`, on the machine's shared"
        " monotonic clock); one warm-up match, then"
        f" {sizes['samples']} matches, each closed before the next. Floor: the Discord calls"
        " that must follow one another (create the channel, then move into it: "
        f"{outcome['floor_layers']} layers, counted from the audit log) x the latency.",
        "",
        "| median ms | min ms | max ms | floor ms | median / floor | own time ms (median) |",
        "|---|---|---|---|---|---|",
        f"| {outcome['elapsed_ms']['p50']} | {outcome['elapsed_ms']['min']} "
        f"| {outcome['elapsed_ms']['max']} | {outcome['floor_ms']:g} | {outcome['ratio_p50']} "
        f"| {outcome['own_ms_p50']:g} |",
        "",
        "Own time: end to end less the injected latency of the serial calls (the floor). Where"
        " the time goes (medians, ms, from the audit log's times): "
        + "; ".join(f"{_PHASES[name]} {ms:g}" for name, ms in outcome["phases_ms_p50"].items())
        + ". Of that our own (the creates and the moves less the latency they wait): "
        + "; ".join(f"{_PHASES[name]} {ms:g}" for name, ms in outcome["own_phases_ms_p50"].items())
        + ".",
        "",
        "Discord calls per match (audit log): "
        + ", ".join(f"`{route}` x{count}" for route, count in calls.items())
        + ".",
        "",
    ]


def burst_section(outcome: dict[str, Any]) -> list[str]:
    sizes = outcome["sizes"]
    return [
        "## Burst",
        "",
        f"{sizes['matches']} ready webhooks sent within {sizes['window_s']:g} s (two teams with"
        " linked players each), `POST /guilds/{guild_id}/channels` limited by the sandbox to"
        f" {sizes['limit']} per {sizes['per_s']:g} s. Time from the first webhook until every"
        " channel exists (guild state polled every 50 ms); minimum = (ceil(channels / limit)"
        " - 1) windows. Then, once ingest has nothing pending or failed, every match must"
        " have exactly its two channels.",
        "",
        "| channels | elapsed s | minimum s | ratio | lost | doubled | creates by status |",
        "|---|---|---|---|---|---|---|",
        f"| {outcome['channels_found']} / {outcome['channels_expected']} "
        f"| {outcome['elapsed_s']} | {outcome['minimum_s']:g} | {outcome['ratio']} "
        f"| {len(outcome['lost_matches'])} | {len(outcome['doubled_matches'])} "
        f"| {outcome['create_calls_by_status']} |",
        "",
    ]


def registry_section(outcome: dict[str, Any]) -> list[str]:
    resolve, bare = outcome["resolve_players"], outcome["health_check_reference"]
    return [
        "## Registry",
        "",
        f"`ResolvePlayers` of {outcome['sizes']['ids']} ids (half linked) on an in-process"
        " registry server over the run's database, called one after the other"
        f" {outcome['sizes']['calls']} times; SQL counted with asyncpg's query logger."
        " Reference: `grpc.health.v1.Health/Check` on the same server and channel.",
        "",
        "| call | p50 ms | p99 ms | SQL statements per call |",
        "|---|---|---|---|",
        f"| ResolvePlayers | {resolve['p50_ms']} | {resolve['p99_ms']} "
        f"| {_fmt(outcome['sql_statements_per_call'])} |",
        f"| Health/Check (reference) | {bare['p50_ms']} | {bare['p99_ms']} | 0 |",
        "",
    ]


def memory_section(outcome: dict[str, Any]) -> list[str]:
    rss = outcome["rss_mib"]
    sizes = outcome["sizes"]
    lines = [
        "## Memory",
        "",
        f"RSS (psutil) of each service process: idle after start, after {sizes['warmup']}"
        f" warm-up matches, and after {sizes['matches']} more, each opened and closed through"
        f" webhooks ({sizes['concurrency']} at a time, channels created and deleted in the"
        f" Discord sandbox); {outcome['matches_per_s']} matches/s;"
        f" {outcome['leftover_channels']} match channels left over.",
        "",
        "| service | idle MiB | after warm-up MiB | after matches MiB | growth after warm-up |",
        "|---|---|---|---|---|",
    ]
    for name in rss["idle"]:
        lines.append(
            f"| {name} | {rss['idle'][name]} | {rss['after_warmup'][name]} "
            f"| {rss['after_matches'][name]} | {outcome['growth_after_warmup'][name]} |"
        )
    return [*lines, ""]


Section = Callable[[dict[str, Any]], list[str]]
"""A benchmark's part of the document, from its outcome."""


def render(results: dict[str, Any], sections: Mapping[str, Section]) -> str:
    """The whole benchmarks document; `sections` renders each benchmark by name."""
    machine = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`; `python -m bench --quick` is a smoke"
        " run) from `bench/results.json`; do not edit by hand. Each figure is measured in the"
        " same run as its reference: the machine is shared and noisy, so read the ratios.",
        "",
        f"- command: `{results['command']}` ({results['mode']} mode, {results['seconds']} s)",
        f"- date: {machine['date']}, commit `{machine['commit']}`",
        f"- machine: {machine['cores']} cores ({machine['usable_cores']} usable),"
        f" {machine['cpu_model']}, {machine['memory_gib']} GiB, {machine['os']}",
        f"- Python {machine['python']}; every process (services, sandboxes, Postgres, load"
        " generator) on this one machine, loopback only",
        "",
        "## Targets",
        "",
        *_targets(results),
        "",
    ]
    for name, outcome in results["benchmarks"].items():
        lines += sections[name](outcome)
    # The analysis is written by people, dated and tied to commits; only the figures above
    # are generated from this run.
    lines.append(FINDINGS.read_text())
    return "\n".join(lines)
