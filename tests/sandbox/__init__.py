"""Tests of the offline sandboxes."""
