"""``python -m mmsearch`` runs the CLI."""

from mmsearch.cli import main

if __name__ == "__main__":
    main()
