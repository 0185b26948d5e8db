"""Errors the CLI turns into one clear line and an exit code (never a traceback)."""
from __future__ import annotations


class MicropruneError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""

    exit_code = 1


class UsageError(MicropruneError):
    """Bad arguments or configuration: exit code 2, like click's own usage errors."""

    exit_code = 2


class ConfigError(UsageError):
    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")


class OutputError(MicropruneError):
    """OUT cannot be written as asked (not empty, overlaps the input, ...)."""
