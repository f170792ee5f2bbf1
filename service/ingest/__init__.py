"""Ingest: verify a Svix delivery on its raw bytes, make it durable, hand it to the queue."""
