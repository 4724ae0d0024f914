"""Tests of the shared service kit."""
