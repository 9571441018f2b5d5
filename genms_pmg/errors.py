"""Errors that tell the user what to do.

Every error raised on purpose by GenMS derives from :class:`GenMSError`; the CLI prints its message
on one line and exits with its ``exit_code`` (2 for usage errors), never a traceback.
"""

from __future__ import annotations


class GenMSError(Exception):
    """Base class: a one-line message that says what went wrong and how to fix it."""

    exit_code: int = 1


class UsageError(GenMSError, ValueError):
    """The request or an option is unusable as given (CLI exit code 2)."""

    exit_code = 2


class DataUnavailableError(GenMSError, RuntimeError):
    """Reference data could not be found, fetched or verified."""

    exit_code = 2


class PluginError(GenMSError, RuntimeError):
    """A plugin could not be found, loaded or validated."""

    exit_code = 2


class GenMSWarning(UserWarning):
    """Something the user should know that did not stop the run (e.g. an LLM fell back to offline).

    ``genms generate`` prints these as ``genms: warning: ...`` lines and hides other libraries' warnings.
    """
