"""Tests of the FACEIT sandbox."""
