"""User-facing errors: one message that says what was expected, what was found, what to do."""

from __future__ import annotations

import errno


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

    # True where another process of the same job prints this error (a rank of a torchrun job other than the
    # one that reports it: :class:`virnucpro_core.extract.distributed.RanksFailed`); the command then exits quietly.
    silent = False

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


_OS_FIXES = {
    errno.ENOSPC: "free space on that file system (or point the output elsewhere) and rerun; outputs are written "
    "whole or not at all, and finished stages are reused",
    errno.EDQUOT: "free space in your quota and rerun",
    errno.EACCES: "choose a location you can write to, or fix the permissions",
    errno.EPERM: "choose a location you can write to, or fix the permissions",
    errno.EROFS: "choose a location on a writable file system",
    errno.EISDIR: "the path is a directory where a file goes: choose another path",
    errno.ENOTDIR: "a part of the path is a file where a directory goes: choose another path",
    errno.EEXIST: "the path exists as the other kind (file or directory): choose another path",
}


def os_error_message(error: OSError) -> str:
    """One line for an operating-system error: what failed, where, and what to do."""
    # os.replace(temporary, target) fails on the target, the path people know (filename2).
    path = error.filename2 or error.filename
    where = f" {path}" if path else ""
    fix = _OS_FIXES.get(error.errno, "check the path and the machine, then rerun")
    return f"cannot use{where}: {error.strerror or error}\n  to fix: {fix}"


def describe_error(error: BaseException) -> str:
    """The message a person reads for ``error``: ours as written, an OS error with its fix, else type and text."""
    if isinstance(error, VirNucProError):
        return str(error)
    if isinstance(error, OSError):
        return os_error_message(error)
    if type(error).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, named without importing torch
        first = str(error).strip().splitlines()[0] if str(error).strip() else "out of memory"
        return (f"{type(error).__name__}: {first}\n  to fix: lower --toks-per-batch (or use a smaller --dtype) and "
                "rerun the same command; finished shards are reused")
    return f"{type(error).__name__}: {error}"
