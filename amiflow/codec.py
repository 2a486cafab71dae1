"""The payload codec: every payload amiflow gives Temporal is sealed before it leaves the process.

A dossier's payloads (its workflow's input, updates, queries, results, activity arguments, failures)
are sealed with that dossier's data key; the serialization context tells which dossier. Anything else
(a call's workflow) is sealed with the active master key. Each payload says, in clear metadata, its
key id and its dossier id — never content — so the codec server can decide who may decode it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)  # fmt: skip

from domain.dossier import is_dossier_id
from journal.keys import DossierKeys, seal, unseal

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
DOSSIER = "amiflow-dossier"
GENERAL_AAD = b"amiflow:payload"


def dossier_of(payload: Payload) -> str | None:
    """The dossier a sealed payload belongs to (clear metadata), if any."""
    value = payload.metadata.get(DOSSIER)
    return value.decode() if value else None


class EnvelopeCodec(PayloadCodec, WithSerializationContext):
    """AES-256-GCM payload codec with key ids; per-dossier data keys under a workflow context."""

    def __init__(self, keys: DossierKeys, dossier_id: str | None = None) -> None:
        self.keys = keys
        self.dossier_id = dossier_id

    def with_context(self, context: SerializationContext) -> EnvelopeCodec:
        """The codec for the workflow the payloads belong to."""
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        dossier = workflow_id if workflow_id and is_dossier_id(workflow_id) else None
        return self if dossier == self.dossier_id else EnvelopeCodec(self.keys, dossier)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Seal each payload whole (metadata and data)."""
        if self.dossier_id is None:
            key_id = self.keys.keyring.active
            key, aad, meta = self.keys.keyring.key(key_id), GENERAL_AAD, {}
        else:
            key_id, key = await self.keys.current(self.dossier_id)
            aad, meta = self.dossier_id.encode(), {DOSSIER: self.dossier_id.encode()}
        return [
            Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode(), **meta},
                    data=seal(key, p.SerializeToString(), aad))  # fmt: skip
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open each sealed payload; payloads not sealed by amiflow pass as they are."""
        return [await self.open(p) for p in payloads]

    async def open(self, payload: Payload) -> Payload:
        """Open one payload, whichever dossier it names (the codec server decodes any)."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata[KEY_ID].decode()
        dossier = dossier_of(payload)
        if dossier is None:
            key, aad, what = self.keys.keyring.key(key_id), GENERAL_AAD, f"charge utile (clé {key_id})"
        else:
            key, aad = await self.keys.get(dossier, key_id), dossier.encode()
            what = f"charge utile du dossier {dossier} (clé {key_id})"
        return Payload.FromString(unseal(key, payload.data, aad, what))


def data_converter(keys: DossierKeys) -> DataConverter:
    """Pydantic payloads, sealed by the codec; failure messages and stack traces travel inside the
    sealed payloads too, since Temporal would otherwise keep them in clear."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EnvelopeCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
