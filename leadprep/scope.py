"""Who sees what on the org server.

A manager sees and records for the reps of the teams they manage. A manager of managers (a
team whose reps manage teams of their own) sees every team under them, however deep. A
director (``directors:`` in the config) sees every team. Anyone else sees nothing. The loopback
review, with no sign-in, is one person's and sees everything.

Who reports to whom comes from the config's teams and from the review's own sheets (a manager
named by the CRM or a file's ``manager_email``), so a team the config does not list is still
its manager's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from leadprep.config import Config

Role = Literal["everyone", "director", "manager of managers", "manager", "nobody"]


@dataclass(frozen=True)
class Scope:
    """What one person may see and record for: their role, and the managers whose teams are
    theirs (all teams for a director, and for the single-user review)."""

    email: str | None  # None: the single-user review on this machine, signed in as nobody
    role: Role
    managers: frozenset[str] = frozenset()
    name: str | None = None

    @property
    def sees_all(self) -> bool:
        return self.role in ("everyone", "director")

    @property
    def sees_anything(self) -> bool:
        return self.role != "nobody"

    def sees_team(self, manager_email: str | None) -> bool:
        """Whether the team of this manager (None: reps with no manager on record) is in scope."""
        if self.sees_all:
            return True
        return manager_email is not None and manager_email in self.managers

    @property
    def who(self) -> str:
        """How the pages name the signed-in person: "Dana Kim (dana@example.com)"."""
        if self.email is None:
            return "this machine's user"
        return f"{self.name} ({self.email})" if self.name else self.email


EVERYONE = Scope(None, "everyone")


def reporting_lines(
    config: Config, sheets: Iterable[tuple[str, str | None]] = ()
) -> dict[str, set[str]]:
    """Manager email -> the emails reporting to them, from the config's teams and the sheets'
    (rep email, manager email) pairs."""
    reports: dict[str, set[str]] = {}
    for team in config.teams:
        reports.setdefault(team.manager.email, set()).update(team.reps)
    for rep, manager in sheets:
        if manager:
            reports.setdefault(manager, set()).add(rep)
    return reports


def scope_of(email: str, config: Config, sheets: Iterable[tuple[str, str | None]] = ()) -> Scope:
    """The scope of the person signed in as ``email``."""
    email = email.strip().lower()
    reports = reporting_lines(config, sheets)
    names = {t.manager.email: t.manager.name for t in config.teams}
    name = names.get(email)
    if email in {d.lower() for d in config.directors}:
        return Scope(email, "director", frozenset(reports), name)
    if email not in reports:
        return Scope(email, "nobody", name=name)
    under, frontier = {email}, [email]
    while frontier:  # every manager below, however deep (a cycle ends: each is visited once)
        for person in reports.get(frontier.pop(), ()):
            if person in reports and person not in under:
                under.add(person)
                frontier.append(person)
    role: Role = "manager of managers" if len(under) > 1 else "manager"
    return Scope(email, role, frozenset(under), name)
