"""The base of every config section (pydantic): an unknown key is an error, never ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section; a typo in a key is reported with its path instead of silently dropped."""

    model_config = ConfigDict(extra="forbid")
