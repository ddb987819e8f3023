"""The `k4u` command line (typer). Sits above everything; nothing imports it."""
