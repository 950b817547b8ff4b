"""`python -m benchbox`."""

from benchbox.cli import main

main()
