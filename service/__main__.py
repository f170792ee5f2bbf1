"""`python -m service` is `clerk-replica`."""

from service.cli import main

main()
