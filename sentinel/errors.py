"""Errors the `sentinel` command turns into one line on stderr and exit code 2."""

from __future__ import annotations


class SentinelError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


class UsageError(SentinelError):
    """Bad arguments: an impossible date, an unknown value, an unwritable folder."""
