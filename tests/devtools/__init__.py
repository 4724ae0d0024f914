"""Tests of the development tools (the local runner and its child processes)."""
