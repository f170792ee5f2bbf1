"""Local development: the one-command embedded stack and test events."""
