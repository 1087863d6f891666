"""Errors people can act on.

A leaf module: it imports nothing from the package. Every error carries a
one-sentence message naming the thing, the limit and a way out. The CLI prints
``str(error)`` on one line and exits with code 2 (traceback only with --debug).
"""

from __future__ import annotations


class Snn2hwError(Exception):
    """Base class for every error snn2hw raises on purpose."""

    code = "snn2hw"

    def __init__(self, message: str, *, hint: str | None = None, node: str | None = None,
                 context: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.node = node
        self.context = context

    def with_context(self, context: str) -> Snn2hwError:
        """Return the same error with outer context prepended (as it travels up)."""
        outer = f"{context}: {self.context}" if self.context else context
        return type(self)(self.message, hint=self.hint, node=self.node, context=outer)

    def __str__(self) -> str:
        text = self.message
        if self.node and self.node not in text:
            text = f"node '{self.node}': {text}"
        if self.context:
            text = f"{self.context}: {text}"
        if self.hint:
            text = f"{text.rstrip('.')}. {self.hint}"
        return text


class UserInputError(Snn2hwError):
    """A file, option or argument given by the user is unusable."""

    code = "input"


class ModelFileError(UserInputError):
    """A model file is missing, unreadable, truncated or corrupt."""

    code = "model-file"


class UnsupportedError(Snn2hwError):
    """A construct the importer, pass or target cannot handle."""

    code = "unsupported"


class GraphError(Snn2hwError):
    """The graph is invalid: dangling edges, shape mismatches, algebraic loops."""

    code = "graph"


class TargetError(Snn2hwError):
    """A target file is invalid (unknown or missing keys, bad values)."""

    code = "target"


class DesignRuleError(Snn2hwError):
    """The network does not fit the target's limits."""

    code = "design-rule"


class DeviceError(Snn2hwError):
    """A device is not installed, or cannot run this program."""

    code = "device"


class IRError(Snn2hwError):
    """An IR level's invariant does not hold after a compiler pass (a compiler bug; what
    ``--verify-each`` finds)."""

    code = "ir"


class LavaEnvironmentError(Snn2hwError):
    """No usable Lava interpreter, or a Lava run failed."""

    code = "lava"
