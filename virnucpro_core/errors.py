"""User-facing errors: one message that says what was expected, what was found, what to do."""

from __future__ import annotations


class VirNucProError(Exception):
    """An error a user can act on without reading a traceback.

    The CLI prints ``str(error)`` and exits with status 2; the acceptance suite
    shows it as the reason of a failed stage.

    Args:
        problem: one line naming the input and what is wrong with it.
        expected: what a valid input looks like.
        found: what was actually found.
        fix: the next thing the user should do.
    """

    def __init__(
        self,
        problem: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.expected = expected
        self.found = found
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [self.problem]
        for label, value in (("expected", self.expected), ("found", self.found), ("to fix", self.fix)):
            if value:
                lines.append(f"  {label}: {value}")
        return "\n".join(lines)


class InputError(VirNucProError):
    """A user-supplied file or option is not what the pipeline can use."""


class DimensionError(VirNucProError):
    """Features, checkpoints or models of incompatible widths were combined."""


class WeightsNotFoundError(VirNucProError):
    """Pretrained weights were asked for but are not on this machine."""
