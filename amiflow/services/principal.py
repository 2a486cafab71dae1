"""Who acts through an entry point."""

from __future__ import annotations

from dataclasses import dataclass

from domain.access import Actor, Origin

# How a person came in: the operator's `--as` on the server, a personal token, OpenID Connect sign-in,
# an invitation link (the codec server says "codec": its tokens are the personal ones).
VIAS = ("cli", "token", "oidc", "invitation", "codec")


@dataclass(frozen=True)
class Principal:
    """An actor and the way they came in. `proven` is False for an operator's `--as` on the server,
    a claim recorded as such (with the operator's OS user, and checked against the directory before
    anything runs); True once sign-in or a personal token proves the identity. `person` is the name in
    the directory of the person acted for."""

    actor: Actor
    via: str = "cli"
    proven: bool = False
    person: str | None = None
    os_user: str | None = None

    @classmethod
    def operator(cls, text: str, os_user: str | None = None) -> Principal:
        """The person an operator names with `--as ROLE:NAME` on the server."""
        actor = Actor.parse(text)
        return cls(actor, "cli", False, person=actor.name, os_user=os_user)

    @property
    def origin(self) -> Origin:
        """Where the action came from, as the journal's events record it."""
        return Origin(via=self.via, os_user=self.os_user)

    @property
    def provenance(self) -> str:
        """How the read log and the journal say where an action came from: the channel, and for an
        operator's command line the OS user who typed it (`cli:julien`)."""
        return f"{self.via}:{self.os_user}" if self.os_user else self.via

    def __str__(self) -> str:
        return str(self.actor)
