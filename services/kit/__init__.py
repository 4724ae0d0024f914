"""Shared service kit: settings, logging, Postgres, migrations and gRPC plumbing."""
