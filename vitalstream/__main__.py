"""``python -m vitalstream`` runs the command line (used to start child services)."""

from vitalstream.cli import main

main()
