"""A workflow that only answers: the floor of a Temporal Update on the same stack as amiflow.

Its update handler returns at once (no activity, no timer, no lock), so one Update costs one
workflow task. In its own module, importing nothing but the SDK, as the sandbox wants.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class BareWorkflow:
    """Counts the updates it receives until told to finish."""

    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        """Wait for `finish`, let running handlers end, return how many updates came."""
        await workflow.wait_condition(lambda: self.done)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.count

    @workflow.update
    def bump(self) -> int:
        """Answer at once."""
        self.count += 1
        return self.count

    @workflow.signal
    def finish(self) -> None:
        """End the workflow."""
        self.done = True
