"""System tests: whole processes, many writers, hostile input, real faults."""
