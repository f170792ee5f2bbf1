"""What the tests and benchmarks share, and no test: the fake Clerk, signatures, payloads,
servers, the fault stack, the commands. Nothing here imports a test module."""
