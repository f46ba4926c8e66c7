"""``python -m conveyor`` runs the CLI (used to start worker nodes as subprocesses)."""

from conveyor.cli import main

main()
