"""`make bench`: the hot paths of faceit-voice measured beside their references, in one run."""
