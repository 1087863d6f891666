"""Errors of the emulator (a leaf module: imports nothing).

The emulator knows nothing of the compiler, so it has its own small hierarchy.
Messages name the thing, the limit and a way out, on one line.
"""

from __future__ import annotations


class ProgramError(Exception):
    """A program image or its inputs cannot be run."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message.rstrip('.')}. {self.hint}" if self.hint else self.message


class ImageFormatError(ProgramError):
    """The file is not a program image, is truncated/corrupt, or has an unknown version."""


class ProgramLimitError(ProgramError):
    """A parameter is outside what the target's registers can hold."""


class InputError(ProgramError):
    """Input spikes have the wrong shape, dtype or values."""


class TargetFileError(ProgramError):
    """A target file (or the one a program image embeds) is invalid: not TOML, an unknown
    or missing key, a value of the wrong type, or one its arithmetic family cannot honour."""
