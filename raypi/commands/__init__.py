"""Subcommands of the ``raypi`` command, one module each (``register`` + ``run``)."""
