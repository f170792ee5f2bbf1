"""Clerk kinds: one module per kind declares all of it (see declaration.py); the registry
collects them."""
