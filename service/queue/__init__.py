"""The queue: the only package that imports arq, so it can be swapped without touching apply."""
