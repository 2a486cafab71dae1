"""Who acts through an entry point."""

from __future__ import annotations

from dataclasses import dataclass

from domain.access import Actor


@dataclass(frozen=True)
class Principal:
    """An actor and the way they came in. `proven` is False for an operator's `--as` on the server,
    a claim recorded as such; True once sign-in or a personal token proves the identity."""

    actor: Actor
    via: str = "cli"
    proven: bool = False

    @classmethod
    def operator(cls, text: str) -> Principal:
        """The person an operator names with `--as ROLE:NAME` on the server."""
        return cls(Actor.parse(text), "cli", False)

    def __str__(self) -> str:
        return str(self.actor)
