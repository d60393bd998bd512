"""Headless subcommands, one module per area.

Each module has ``add_parsers(subcommands)``, which adds its subparsers and sets
``handler=function(args) -> int`` on each with ``set_defaults``. ``pumpclinic.cli`` lists the
modules in ``COMMAND_MODULES``. Raise ``CommandError`` for bad input: the message, which
names the option or field and its limit, is printed as one ``error: ...`` line, exit 2.
"""

from __future__ import annotations


class CommandError(Exception):
    """Bad input to a headless command; ``str()`` names the field and the limit."""
