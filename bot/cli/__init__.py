"""One module per `python -m bot` command (see bot/__main__.py)."""
