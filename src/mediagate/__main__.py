"""``python -m mediagate`` runs the CLI."""

from mediagate.cli import main

main()
