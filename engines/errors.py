"""Errors an engine or the settings layer raises for the user to read."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: shown as one clear line, never a stack trace.

    The CLI turns it into exit code 2, the dashboard into a visible message.
    """


class EngineUnavailable(InputError):
    """The engine exists in the registry but its packages are not installed."""


class LoadError(InputError):
    """A checkpoint or model directory could not be loaded (missing files, bad layout)."""
