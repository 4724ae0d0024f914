"""Tests of the Discord sandbox."""
