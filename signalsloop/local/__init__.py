"""The local runtime: embedded PostgreSQL stack, relay, demo."""
