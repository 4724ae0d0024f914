"""bench.profile's reading of py-spy's folded stacks."""

from __future__ import annotations

from pathlib import Path

from bench.profile import top_frames


def test_top_frames_rank_the_frames_on_top_of_the_most_samples(tmp_path: Path) -> None:
    """Own samples count for the last frame of each stack; shares add up over all samples."""
    folded = tmp_path / "spy.txt"
    folded.write_text("main;parse;validate 6\nmain;store 3\nmain;parse 1\n\n")
    assert top_frames(folded, count=2) == [(0.6, "validate"), (0.3, "store")]
