"""`python -m bullpen` runs the CLI."""

from bullpen.cli import main

main()
