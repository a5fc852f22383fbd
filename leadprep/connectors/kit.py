"""What a connector needs beyond the neutral HTTP kit (:mod:`leadprep.http`): reading a CRM's
answers so that a shape the parsing does not know is the CRM's answer (exit 4), not a crash."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from leadprep.errors import CRMUnavailableError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def reads_answers_of(service: str) -> Callable[[F], F]:
    """A connector method whose parsing of the service's answers may meet a shape it does not
    know (a field of the wrong type, a list where an object was expected): that is reported as
    the service's answer, exit 4, never as an internal error. The details are in the -v log."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                log.debug("an answer of unexpected shape from %s", service, exc_info=True)
                raise CRMUnavailableError(
                    f"{service} answered in a shape leadprep does not know "
                    f"({type(exc).__name__}: {str(exc)[:120]}); nothing was written.",
                    hint=f"Try again later. If it repeats, run with -v and report it: {service} "
                    "may have changed its API, or leadprep misreads it.",
                ) from exc

        return wrapper  # type: ignore[return-value]

    return decorate
