"""The call as its workflow holds it, read for a dossier's workflow (which cannot query another
workflow itself). A dossier starts its draft under, and follows the extensions of, what the call's
workflow answers here: never a snapshot or a date a client sent."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.contracts import READ_CALL, CallStanding, ReadCall


def _call_workflow_id(call_id: str) -> str:
    return f"call:{call_id}"  # workflows.call.call_workflow_id, without importing workflow code here


class CallActivities:
    """Reads of the calls' workflows, with the worker's own client (its codec, its namespace)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=READ_CALL)
    async def read(self, request: ReadCall) -> CallStanding:
        """The call as it stands (extensions included) and who extended which phase.

        Raises:
            ApplicationError: `UnknownCall` (not retried) when no workflow holds that call.
        """
        handle = self.client.get_workflow_handle(_call_workflow_id(request.call_id))
        try:
            standing: CallStanding = await handle.query("standing", result_type=CallStanding)
            return standing
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise ApplicationError(f"Appel inconnu « {request.call_id} ».", type="UnknownCall",
                                       non_retryable=True) from None  # fmt: skip
            raise
