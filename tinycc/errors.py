"""Errors users see, each with its documented exit code.

Exit codes: 0 ok, 2 bad input or unsupported model, 3 model does not fit the budget,
70 internal error (a bug in tinycc: please report it with --debug output).
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_DOES_NOT_FIT = 3
EXIT_INTERNAL = 70


class TinyccError(Exception):
    """Base class: a message meant for the user, and the exit code the CLI returns."""

    exit_code = EXIT_INTERNAL


class BadInput(TinyccError):
    """The model or an argument is malformed (missing file, corrupt protobuf, bad shapes...)."""

    exit_code = EXIT_BAD_INPUT


class Unsupported(BadInput):
    """The model is valid but uses something tinycc does not implement."""


class DoesNotFit(TinyccError):
    """The compiled model needs more memory than the budget allows."""

    exit_code = EXIT_DOES_NOT_FIT
