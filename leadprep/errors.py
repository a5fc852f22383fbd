"""One error hierarchy for the whole tool, each class carrying the exit code the CLI returns."""

from __future__ import annotations

from collections.abc import Mapping

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_CRM_AUTH = 3
EXIT_CRM_UNAVAILABLE = 4
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in leadprep, never "partial"
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as a Unix tool killed by it: the reader stopped early


class LeadprepError(Exception):
    """Base for every error leadprep reports to a person; the message says what, where and how to fix."""

    exit_code = EXIT_USAGE

    def __init__(
        self, message: str, *, hint: str | None = None, inputs: Mapping[str, str] | None = None
    ) -> None:
        """``inputs``: the inputs the message and hint name as ``{key}``, each with the plain
        words it reads as anywhere; the CLI and the review page say them in their own terms
        (a flag, a field) with :meth:`in_terms`."""
        self.inputs = dict(inputs or {})
        self._template = (message, hint)
        self.message, self.hint = self._said(self.inputs)
        super().__init__(self.message)

    def _said(self, terms: Mapping[str, str]) -> tuple[str, str | None]:
        message, hint = self._template
        if not self.inputs:
            return message, hint
        words = {key: terms.get(key, plain) for key, plain in self.inputs.items()}
        return message.format(**words), hint.format(**words) if hint else None

    def in_terms(self, terms: Mapping[str, str]) -> LeadprepError:
        """The same error, its inputs named as ``terms`` says (``{"rep": "--rep EMAIL"}``)."""
        if not self.inputs:
            return self
        # not copy.copy: it would call a subclass's own __init__ with the message alone
        said = type(self).__new__(type(self))
        said.__dict__.update(self.__dict__)
        said.args = self.args
        said.message, said.hint = self._said(terms)
        return said

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"


class ConfigError(LeadprepError):
    """The configuration file is missing, unreadable or invalid."""

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  → {self.hint}")
        return "\n".join(lines)


class UsageError(LeadprepError):
    """A command was called with arguments that cannot work."""


class DataError(LeadprepError):
    """Input data (an import file, the state store) cannot be used at all."""


class CRMAuthError(LeadprepError):
    """The CRM refused our credentials or lacks a permission we need."""

    exit_code = EXIT_CRM_AUTH


class ServiceUnavailableError(LeadprepError):
    """A web service (a CRM, a chat service) could not be reached, or kept refusing after
    retries."""

    exit_code = EXIT_CRM_UNAVAILABLE


class CRMUnavailableError(ServiceUnavailableError):
    """The CRM could not be reached, or its rate limit was exhausted after retries."""


class ChannelUnavailableError(ServiceUnavailableError):
    """A delivery channel (SMTP, Slack, Teams) could not be reached after retries."""


class OutputError(LeadprepError):
    """An output file could not be written (e.g. PDF support missing)."""
