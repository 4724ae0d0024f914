"""The ingest service: FACEIT webhooks and polls into a durable inbox, delivered to voice."""
