"""The payload codec: every payload amiflow gives Temporal is sealed before it leaves the process.

A dossier's payloads (its workflow's input, updates, queries, results, activity arguments, failures)
are sealed with that dossier's data key; the serialization context tells which dossier. Anything else
(a call's workflow) is sealed with the active master key. Each payload says, in clear metadata, its
key id and its dossier id — never content — so the codec server can decide who may decode it.

Temporal's frontend is a trust boundary: under a workflow's context (what a worker decodes for a
workflow or an activity, what a client decodes for a workflow) a payload must be sealed, and for a
dossier sealed for that very dossier. Anything else — clear JSON from a plain client, a payload copied
from another dossier — is refused (see `EnvelopeCodec.decode`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    EncodingPayloadConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from domain.state import is_dossier_id
from journal.keys import DossierKeys, seal, unseal
from journal.logs import logger

ENCODING = b"binary/encrypted"
REFUSED = "binary/amiflow-refused"
KEY_ID = "encryption-key-id"
DOSSIER = "amiflow-dossier"
GENERAL_AAD = b"amiflow:payload"


class RefusedPayload(Exception):
    """A payload that is not sealed for the workflow it arrived at."""


def dossier_of(payload: Payload) -> str | None:
    """The dossier a sealed payload belongs to (clear metadata), if any."""
    value = payload.metadata.get(DOSSIER)
    return value.decode() if value else None


class EnvelopeCodec(PayloadCodec, WithSerializationContext):
    """AES-256-GCM payload codec with key ids; per-dossier data keys under a workflow context."""

    def __init__(self, keys: DossierKeys, dossier_id: str | None = None, workflow_id: str | None = None) -> None:
        self.keys = keys
        self.dossier_id = dossier_id
        self.workflow_id = workflow_id or dossier_id  # None: no workflow's context (the codec server)

    def with_context(self, context: SerializationContext) -> EnvelopeCodec:
        """The codec for the workflow the payloads belong to."""
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        dossier = workflow_id if workflow_id and is_dossier_id(workflow_id) else None
        if workflow_id == self.workflow_id and dossier == self.dossier_id:
            return self
        return EnvelopeCodec(self.keys, dossier, workflow_id)

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
                    data=seal(key, p.SerializeToString(), aad))
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open each sealed payload. Under a workflow's context, a payload not sealed for that
        workflow is replaced by a refusal that no converter turns into a value; without a context
        (the codec server), payloads not sealed by amiflow pass as they are."""
        if self.workflow_id is None:
            return [await self.open(p) for p in payloads]
        return [await self._own_or_refused(p) for p in payloads]

    def check_own(self, payload: Payload) -> None:
        """Whether the payload is sealed for this context's workflow.

        Raises:
            RefusedPayload: clear, or sealed for another dossier (or with the general key for a
            dossier, or for a dossier under a call's workflow).
        """
        if payload.metadata.get("encoding") != ENCODING:
            raise RefusedPayload(f"charge utile en clair refusée pour le workflow {self.workflow_id}")
        sealed_for = dossier_of(payload)
        if sealed_for != self.dossier_id:
            raise RefusedPayload(f"charge utile scellée pour {sealed_for or 'aucun dossier'} refusée pour le "
                                 f"workflow {self.workflow_id}")

    async def _own_or_refused(self, payload: Payload) -> Payload:
        # A refusal, not an exception: an exception here fails the whole workflow task, and a signal
        # kept in history would then wedge the dossier for good. As a value that no converter reads,
        # the SDK refuses it where it arrived: a signal is dropped, an Update rejected, a start fails.
        try:
            self.check_own(payload)
        except RefusedPayload as exc:
            logger(workflow_id=self.workflow_id).warning("codec.refused", refusal=str(exc))  # ids only
            return Payload(metadata={"encoding": REFUSED.encode()}, data=str(exc).encode())
        return await self.open(payload)

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


class RefusedConverter(EncodingPayloadConverter):
    """Turns the codec's refusal into a non-retryable failure where a value was expected."""

    @property
    def encoding(self) -> str:
        """The refusal's encoding."""
        return REFUSED

    def to_payload(self, value: Any) -> Payload | None:
        """Never encodes anything."""
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        """Refuse, saying why."""
        raise ApplicationError(payload.data.decode(), type="RefusedPayload", non_retryable=True)


class AmiflowPayloadConverter(PydanticPayloadConverter):
    """Pydantic JSON, and the codec's refusals turned into failures."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(*self.converters.values(), RefusedConverter())


def data_converter(keys: DossierKeys) -> DataConverter:
    """Pydantic payloads, sealed by the codec; failure messages and stack traces travel inside the
    sealed payloads too, since Temporal would otherwise keep them in clear."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=AmiflowPayloadConverter,
        payload_codec=EnvelopeCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
