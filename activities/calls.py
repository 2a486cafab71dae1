"""The call as its workflow holds it, read for a dossier's workflow (which cannot query another
workflow itself). A dossier starts its draft under, and follows the extensions of, what the call's
workflow answers here: never a snapshot or a date a client sent."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.contracts import READ_CALL, CallStanding, ReadCall


def _call_workflow_id(call_id: str) -> str:
    return f"call:{call_id}"  # workflows.call.call_workflow_id, without importing workflow code here


class CallActivities:
    """Reads of the calls' workflows, with the worker's own client (its codec, its namespace).

    After an extension every open dossier of the phase asks at once: one query answers them all. An
    answer the call's workflow gave (kept, or still on its way) confirms a claimed extension it
    contains; anything it does not confirm is asked afresh. Sound because the call's workflow only
    ever moves a closing later: an answer it really gave can confirm only a real extension.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.known: dict[str, CallStanding] = {}
        self.asking: dict[str, asyncio.Future[CallStanding]] = {}

    @activity.defn(name=READ_CALL)
    async def read(self, request: ReadCall) -> CallStanding:
        """The call as it stands (extensions included) and who extended which phase.

        Raises:
            ApplicationError: `UnknownCall` (not retried) when no workflow holds that call.
        """
        if request.claim is not None:
            for earlier in (self.known.get(request.call_id), self.asking.get(request.call_id)):
                standing = await asyncio.shield(earlier) if isinstance(earlier, asyncio.Future) else earlier
                if standing is not None and standing.extensions.get(request.phase_id) == request.claim:
                    return standing
        return await self._ask(request.call_id)

    async def _ask(self, call_id: str) -> CallStanding:
        asking = asyncio.ensure_future(self._query(call_id))
        self.asking[call_id] = asking
        try:
            standing = await asyncio.shield(asking)
        finally:
            if self.asking.get(call_id) is asking:
                del self.asking[call_id]
        self.known[call_id] = standing
        return standing

    async def _query(self, call_id: str) -> CallStanding:
        handle = self.client.get_workflow_handle(_call_workflow_id(call_id))
        try:
            standing: CallStanding = await handle.query("standing", result_type=CallStanding)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise ApplicationError(f"Appel inconnu « {call_id} ».", type="UnknownCall",
                                       non_retryable=True) from None
            raise
        return standing
