"""What the tests and benchmarks share, and no test: the fake Clerk, signatures, payloads,
histories, databases, settings, the fault stack and the commands. Nothing here imports a test
module; the servers themselves come from service.dev.processes, as `clerk-replica dev`'s do."""
