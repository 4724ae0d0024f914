"""Attacks on the running system: each test tries to break a security property."""
