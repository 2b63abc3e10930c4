"""One exception root for the harness; each subclass says when it is raised.

The CLI turns any ``GamedayError`` into a clear message and a non-zero exit code,
with no traceback, so every error must carry what happened and what to do.
"""

from __future__ import annotations


class GamedayError(Exception):
    """Root of every error the harness raises on purpose."""

    exit_code = 1


class ConfigError(GamedayError):
    """Raised when an input file or option is invalid; names the file, the field and the fix."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 hint: str | None = None) -> None:
        self.file = file
        self.field = field
        self.hint = hint
        parts = []
        if file:
            parts.append(str(file))
        if field:
            parts.append(f"field '{field}'")
        where = ": ".join(parts)
        text = f"{where}: {message}" if where else message
        if hint:
            text += f"\n  fix: {hint}"
        super().__init__(text)


class PrerequisiteMissing(GamedayError):
    """Raised when a binary or package the harness needs (terraform, haproxy, postgres...) is absent."""

    exit_code = 3

    def __init__(self, what: str, install_hint: str) -> None:
        self.what = what
        self.install_hint = install_hint
        super().__init__(f"{what} not found.\n  fix: {install_hint}")


class CommandFailed(GamedayError):
    """Raised when an external command exits non-zero; carries the command, exit code and stderr tail."""

    def __init__(self, command: list[str], exit_code: int, stderr: str, summary: str | None = None) -> None:
        self.command = list(command)
        self.returncode = exit_code
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-25:])
        head = summary or f"command failed with exit code {exit_code}"
        super().__init__(f"{head}\n  command: {' '.join(command)}\n  exit code: {exit_code}\n{tail}")


class TerraformError(CommandFailed):
    """Raised when a terraform command fails; ``resources`` names the resources in its diagnostics."""

    def __init__(self, command: list[str], exit_code: int, stderr: str, summary: str | None = None,
                 resources: list[str] | None = None) -> None:
        self.resources = resources or []
        if self.resources and not summary:
            summary = f"terraform failed on {', '.join(self.resources)}"
        super().__init__(command, exit_code, stderr, summary)


class TimeoutExceeded(GamedayError):
    """Raised when an operation or command does not finish within its time budget."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        self.seconds = seconds
        super().__init__(f"{what} did not finish within {seconds:.1f} s")


class MaxRetriesExceeded(GamedayError):
    """Raised when a retried operation still fails after its allowed attempts.

    When the last error was a failed command, its ``command``, ``returncode`` and ``stderr`` are
    copied here so callers need not dig into ``last_error``.
    """

    def __init__(self, what: str, attempts: int, last_error: BaseException | str) -> None:
        self.what = what
        self.attempts = attempts
        self.last_error = last_error
        failed = last_error if isinstance(last_error, CommandFailed) else None
        self.command: list[str] | None = failed.command if failed else None
        self.returncode: int | None = failed.returncode if failed else None
        self.stderr: str | None = failed.stderr if failed else None
        super().__init__(f"{what} failed after {attempts} attempts: {last_error}")


class EndpointUnreachable(GamedayError):
    """Raised when an AWS (or local control-plane) endpoint does not answer."""


class ControlPlaneError(GamedayError):
    """Raised when the local AWS control plane cannot start or answer."""


class SandboxError(GamedayError):
    """Raised when the local data plane (instances, HAProxy, PostgreSQL) cannot reach the wanted state."""


class LoadError(GamedayError):
    """Raised when the locust load generator fails to start, run or report."""


class DrillError(GamedayError):
    """Raised when a drill cannot run (harness or infrastructure failure, not an SLO breach)."""


class ResourceMissing(GamedayError):
    """Raised when a file tree gameday ships (Terraform module, experiments, scenarios...) is not where it should be."""

    exit_code = 3

    def __init__(self, what: str, path: str, hint: str) -> None:
        self.what = what
        self.path = path
        self.hint = hint
        super().__init__(f"{what} not found at {path}\n  fix: {hint}")
