"""Operator actions: status, replay, read-only roles, migrations."""
