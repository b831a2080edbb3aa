"""Errors the command line reports as one line, with the exit code each one means."""


class AtelierError(Exception):
    """Work that could not be done. The message names what is wrong and how to fix it."""

    exit_code = 1


class UsageError(AtelierError):
    """A bad argument or input file from the user."""

    exit_code = 2
