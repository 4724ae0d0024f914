"""Tests of the shared service code."""
