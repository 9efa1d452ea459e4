"""Allow `python -m stackgen`."""

from stackgen.cli import main

main()
