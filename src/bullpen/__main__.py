"""`python -m bullpen` runs the CLI."""

from bullpen.cli.app import main

main()
