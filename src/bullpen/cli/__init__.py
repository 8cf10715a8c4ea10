"""The `bullpen` command line (Typer): one module per group of commands, in bullpen.cli.app."""
