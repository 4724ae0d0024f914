"""FACEIT sandbox: a local stand-in for FACEIT's Data API v4 and its webhook sender."""
