"""Registry service: links Discord users to FACEIT accounts, looking nicknames up on FACEIT."""
