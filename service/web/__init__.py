"""The web process: the app, its probes and its metrics; the webhook itself is service/ingest/."""
