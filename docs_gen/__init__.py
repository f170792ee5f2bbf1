"""The documentation pages generated from the code: settings, tables, commands, metrics,
webhook answers, and the benchmarks' latest results.

`python -m docs_gen` writes them; `--check` fails when one differs from what the code says
(tests/test_docs_gen.py runs the same check), so nothing is added without its docs.
"""
