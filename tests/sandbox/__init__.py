"""Tests of the sandboxes (local stand-ins for Discord and FACEIT)."""
