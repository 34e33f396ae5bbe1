"""One module per command group; shared options live in options.py."""
