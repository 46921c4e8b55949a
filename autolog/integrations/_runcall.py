"""One training call's run, shared by the tabular integrations: start a run or join the user's, end it once.

A run the user opened (``with autolog.start_run():``) is joined and never ended here, unless ``exclusive`` is set, in
which case the training call gets its own run, a child of the user's. A run opened by an outer call of ours that asks
to be joined (``run.state["joinable"]``, e.g. the sklearn API of xgboost around ``xgboost.train``) is joined too.
"""

from __future__ import annotations

import contextvars
from typing import Any

from autolog import runs, session
from autolog.runs import ActiveRun


def framework_tags(integration: str, version: str | None) -> dict[str, str]:
    tags = {"autolog.integration": integration}
    if version:
        tags["autolog.framework_version"] = version
    return tags


class RunCall:
    """``args``/``kwargs`` go to the framework; ``finish``/``fail`` end the run when this call owns it."""

    def __init__(self, name: str, tags: dict[str, str], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args, self.kwargs = args, kwargs
        active = runs.active_run()
        self.joined = active is not None and (
            active.state.get("joinable", False) or (active.user_started and not session.options().exclusive)
        )
        self.run: ActiveRun
        self._token: contextvars.Token[ActiveRun | None] | None = None
        if self.joined and active is not None:
            self.run = active
        else:
            self.run = runs.new_run(name, tags=tags, parent=active)
            self._token = runs.activate(self.run)

    @property
    def owned(self) -> bool:
        return not self.joined

    def wait_at_end(self) -> bool:
        """Whether ending this call's run waits for the store (``flush`` within ``shutdown_timeout``)."""
        return True

    def close(self, status: str) -> None:
        if self._token is not None:
            runs.deactivate(self._token)
            self._token = None
            wait = self.wait_at_end()
            self.run.end(status, wait=wait)
            if not wait:
                session.report_drops(session.writer())

    def finish(self, result: Any) -> None:
        self.close(runs.status_for(None))

    def fail(self, exc: BaseException) -> None:
        self.close(runs.status_for(exc))
