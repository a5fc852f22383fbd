"""Per-person access links to the org server, and the sign-ins they open.

A link's token is shown once, when it is made, and only its SHA-256 is kept: the state file
(or a backup of it) never holds a token that opens the server. A link stays valid until it
expires or is revoked, so a mail scanner opening it first, or a second device, does no harm;
each opening starts a sign-in (a session) whose own random id lives in an HttpOnly cookie,
also kept only as a hash. Revoking a person's links ends their sign-ins at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from leadprep.store.errors import reports_database_errors
from leadprep.store.repository import Repository

TOKEN_BYTES = 32  # 256 random bits: never guessed, so a wrong try costs nothing to refuse


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AccessLink:
    """One access link as the state file knows it (never its token)."""

    id: int
    email: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    used_at: datetime | None
    created_by: str | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"


@dataclass(frozen=True)
class SignIn:
    """A link exchanged for a sign-in: the session id for the cookie, and until when."""

    session: str
    link: AccessLink


_LINK_COLUMNS = "id, email, created_at, expires_at, revoked_at, used_at, created_by"


def _link(row: tuple[Any, ...]) -> AccessLink:
    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return AccessLink(
        row[0],
        row[1],
        datetime.fromisoformat(row[2]),
        datetime.fromisoformat(row[3]),
        moment(row[4]),
        moment(row[5]),
        row[6],
    )


@reports_database_errors
class AccessLinks(Repository):
    """``store.access``: make, list, revoke and open access links."""

    def add(
        self, email: str, days: int, created_by: str | None = None, now: datetime | None = None
    ) -> tuple[str, AccessLink]:
        """A new link for ``email`` valid for ``days``; returns its token (shown once) and row."""
        now = now or datetime.now(UTC)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO access_links (email, token_hash, created_at, expires_at, created_by)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    email.strip().lower(),
                    digest(token),
                    _moment(now),
                    _moment(now + timedelta(days=days)),
                    created_by,
                ),
            )
            row = db.execute(
                f"SELECT {_LINK_COLUMNS} FROM access_links WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
        return token, _link(row)

    def all(self) -> list[AccessLink]:
        rows = self._store.connection.execute(
            f"SELECT {_LINK_COLUMNS} FROM access_links ORDER BY email, id"
        )
        return [_link(row) for row in rows]

    def revoke(self, email: str, now: datetime | None = None) -> int:
        """Revoke every active link of ``email`` and end their sign-ins; returns how many."""
        email = email.strip().lower()
        with self._store.transaction() as db:
            db.execute(
                "DELETE FROM access_sessions WHERE link_id IN"
                " (SELECT id FROM access_links WHERE email = ?)",
                (email,),
            )
            cursor = db.execute(
                "UPDATE access_links SET revoked_at = ? WHERE email = ? AND revoked_at IS NULL",
                (_moment(now or datetime.now(UTC)), email),
            )
            return cursor.rowcount

    def sign_in(self, token: str, now: datetime | None = None) -> SignIn | str:
        """Exchange a link's token for a new sign-in, or say why not (unknown, revoked,
        expired), in words for the person holding the link."""
        now = now or datetime.now(UTC)
        row = self._store.connection.execute(
            f"SELECT {_LINK_COLUMNS} FROM access_links WHERE token_hash = ?", (digest(token),)
        ).fetchone()
        if row is None:
            return "this access link is not one this server made (check it was copied whole)"
        link = _link(row)
        state = link.state(now)
        if state == "revoked":
            return f"this access link was revoked on {link.revoked_at:%Y-%m-%d}"
        if state == "expired":
            return f"this access link expired on {link.expires_at:%Y-%m-%d}"
        session = secrets.token_urlsafe(TOKEN_BYTES)
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO access_sessions (session_hash, link_id, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (digest(session), link.id, _moment(now), _moment(link.expires_at)),
            )
            db.execute("UPDATE access_links SET used_at = ? WHERE id = ?", (_moment(now), link.id))
            # sign-ins that ended are of no use to anyone: they go as new ones come
            db.execute("DELETE FROM access_sessions WHERE expires_at <= ?", (_moment(now),))
        return SignIn(session, link)

    def signed_in(self, session: str, now: datetime | None = None) -> AccessLink | None:
        """The link behind a sign-in cookie, while both are valid."""
        now = now or datetime.now(UTC)
        row = self._store.connection.execute(
            "SELECT l.id, l.email, l.created_at, l.expires_at, l.revoked_at, l.used_at,"
            " l.created_by FROM access_sessions s JOIN access_links l ON l.id = s.link_id"
            " WHERE s.session_hash = ? AND s.expires_at > ?",
            (digest(session), _moment(now)),
        ).fetchone()
        if row is None:
            return None
        link = _link(row)
        return link if link.state(now) == "active" else None

    def sign_out(self, session: str) -> None:
        with self._store.transaction() as db:
            db.execute("DELETE FROM access_sessions WHERE session_hash = ?", (digest(session),))
