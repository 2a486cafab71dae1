"""Financing schemes (dispositifs) toward which retained dossiers are oriented, and the rule that
picks them: a scheme fits when it funds one of the stated kinds of need, takes the holder's type,
and covers the project's region (or has no territorial limit)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

from domain.calls import Identifier, KnownHolderType, Text, definition_error, one_of
from domain.errors import CallDefinitionError
from domain.record import Record


class NeedKind(StrEnum):
    """Kinds of financing need a dossier can state and a scheme can fund."""

    INVESTISSEMENT = "investissement"
    INNOVATION = "innovation"  # innovation, recherche-développement
    ETUDE = "etude"
    FONCTIONNEMENT = "fonctionnement"
    FORMATION = "formation"

    @property
    def label(self) -> str:
        """French label."""
        return {
            NeedKind.INVESTISSEMENT: "investissement",
            NeedKind.INNOVATION: "innovation / R&D",
            NeedKind.ETUDE: "étude",
            NeedKind.FONCTIONNEMENT: "fonctionnement",
            NeedKind.FORMATION: "formation",
        }[self]


KnownNeedKind = Annotated[NeedKind, one_of(NeedKind, "type de besoin inconnu", "Types admis")]


class Scheme(Record):
    """A financing scheme: who runs it, its envelope, whom and what it funds, where."""

    id: Identifier
    name: Text
    owner: Text
    envelope_eur: Annotated[int, Field(ge=0)] | None = None
    envelope: Text  # as the source states it, e.g. "180 M€ disponibles"
    holder_types: Annotated[tuple[KnownHolderType, ...], Field(min_length=1)]
    needs: Annotated[tuple[KnownNeedKind, ...], Field(min_length=1)]
    regions: tuple[Text, ...] = ()  # empty: no territorial limit
    source: Text
    description: str = ""

    def fits(self, needs: Iterable[NeedKind], holder_type: str, region: str) -> bool:
        """Whether this scheme can fund one of `needs` for that holder type in that region."""
        return (
            holder_type in self.holder_types
            and any(n in self.needs for n in needs)
            and (not self.regions or region in self.regions)
        )


class _Catalogue(BaseModel):
    schemes: Annotated[list[Scheme], Field(min_length=1)]


def parse_schemes(data: Mapping[str, Any] | object, source: str) -> tuple[Scheme, ...]:
    """Validate the scheme catalogue read from `source`.

    Raises:
        CallDefinitionError: with the file, the field's path and the bad value.
    """
    if not isinstance(data, Mapping):
        raise CallDefinitionError(
            source, "(racine)", data, "le catalogue doit contenir une clé `schemes`",
            "Reprenez deploy/schemes.yaml comme modèle.",
        )
    try:
        catalogue = _Catalogue.model_validate(dict(data))
    except ValidationError as exc:
        raise definition_error(exc, data, source) from None
    seen: set[str] = set()
    for i, scheme in enumerate(catalogue.schemes):
        if scheme.id in seen:
            raise CallDefinitionError(
                source, f"schemes[{i}].id", scheme.id, "identifiant en double",
                "Donnez à chaque dispositif un identifiant unique.",
            )
        seen.add(scheme.id)
    return tuple(catalogue.schemes)


def recommend(
    catalogue: Iterable[Scheme], needs: Iterable[NeedKind], holder_type: str, region: str
) -> tuple[Scheme, ...]:
    """The schemes of the catalogue that fit, in catalogue order."""
    wanted = tuple(needs)
    return tuple(s for s in catalogue if s.fits(wanted, holder_type, region))
