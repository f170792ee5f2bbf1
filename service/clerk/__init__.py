"""Clerk itself: its payload building blocks and its time units. Pure: no I/O, no SQL."""
