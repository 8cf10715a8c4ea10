"""What every web request shares: settings, queue clients, registry and declared schedules; and
the queue a request is about (the dashboard's /q/<queue>/ prefix, `?queue=`, or the default)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from starlette.requests import Request

from bullpen.adapter import QueueClient
from bullpen.definitions.schedule import ScheduledJob
from bullpen.definitions.task import Registry
from bullpen.errors import ActionError, BullpenError
from bullpen.exports.service import ExportService
from bullpen.loader import Definitions
from bullpen.queue_names import check_queue_name
from bullpen.settings import Settings

# Set by the queue-scope middleware from the /q/<queue>/ prefix of the path.
QUEUE_SCOPE_KEY = "bullpen.queue"


@dataclass(slots=True)
class WebState:
    """Built once by the app factory; `on(queue)` gives the same state about another queue.

    `client` and `schedules` are the queue's; clients are made on first use, inside the running
    loop (httpx's ASGITransport skips lifespan), and shared by every view of the state.
    """

    settings: Settings
    definitions: Definitions
    redis_url_shown: str
    client_url: str
    exports: ExportService | None = None
    queue: str = ""
    # Every queue bullpen knows of (see Definitions.queues); the default queue first.
    queues: list[str] = field(default_factory=list)
    _clients: dict[str, QueueClient] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.queue = self.queue or self.settings.worker_default_queue
        self.queues = self.queues or self.definitions.queues(self.settings)

    @property
    def registry(self) -> Registry:
        return self.definitions.registry

    @property
    def schedules(self) -> list[ScheduledJob]:
        """The declared schedules whose ticks run on this state's queue."""
        return self.definitions.schedules_on(self.queue, self.settings.worker_default_queue)

    @property
    def client(self) -> QueueClient:
        found = self._clients.get(self.queue)
        if found is None:
            if not self.client_url:
                raise RuntimeError(f"no Redis URL to open queue {self.queue!r} with")
            found = self._clients[self.queue] = QueueClient(
                self.client_url, self.queue, self.settings.worker_prefix,
                self.settings.enqueue_wait)
        return found

    def use_client(self, client: QueueClient) -> None:
        self._clients[client.name] = client

    def on(self, queue: str) -> WebState:
        """This state about `queue` (clients shared)."""
        return self if queue == self.queue else dataclasses.replace(self, queue=queue)

    @property
    def all_queues(self) -> list[WebState]:
        """One view per known queue, the default queue first."""
        return [self.on(queue) for queue in self.queues]

    async def close(self, keep: QueueClient | None = None) -> None:
        """Close the clients this state made (not `keep`, one a test passed in)."""
        for client in self._clients.values():
            if client is not keep:
                await client.close()
        self._clients.clear()


def selected_queue(request: Request) -> str | None:
    """The queue the request names: its /q/<queue>/ prefix, else `?queue=`; None for the
    default. ActionError (400) for a name no queue can have."""
    named = request.scope.get(QUEUE_SCOPE_KEY) or request.query_params.get("queue") or None
    if named is None:
        return None
    try:
        return check_queue_name(named, "queue")
    except BullpenError as exc:
        raise ActionError(str(exc), 400) from None


def web_state(request: Request) -> WebState:
    """The app's state, about the queue the request names."""
    state: WebState = request.app.state.web
    queue = selected_queue(request)
    return state.on(queue) if queue else state


def export_service(state: WebState) -> ExportService:
    """The export service; the export routes exist only when it is configured."""
    if state.exports is None:
        raise RuntimeError("export routes are mounted only with an export service")
    return state.exports
