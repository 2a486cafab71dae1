"""The base of every value of the domain: immutable, closed to unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """An immutable value: state, events, commands and definitions are never changed in place."""

    model_config = ConfigDict(frozen=True, extra="forbid")
