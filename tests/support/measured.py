"""Figures the fault, soak, hostile-input and reconcile tests measure, one line each; conftest
prints them at the end of the run so CI output carries them."""

from __future__ import annotations

REPORT: list[str] = []
