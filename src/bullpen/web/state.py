"""What every web request shares: settings, the queue client, registry and declared schedules."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from bullpen.adapter import QueueClient
from bullpen.definitions.schedule import ScheduledJob
from bullpen.definitions.task import Registry
from bullpen.exports.service import ExportService
from bullpen.settings import Settings


@dataclass(slots=True)
class WebState:
    """Built once by the app factory; `client` is made in the lifespan unless a test passes one."""

    settings: Settings
    registry: Registry
    schedules: list[ScheduledJob]
    redis_url_shown: str
    client_url: str
    exports: ExportService | None = None
    _client: QueueClient | None = None

    @property
    def client(self) -> QueueClient:
        if self._client is None:
            # Built on first use, inside the running loop (httpx's ASGITransport skips lifespan).
            self._client = QueueClient(self.client_url, self.settings.worker_default_queue,
                                       self.settings.worker_prefix)
        return self._client

    def use_client(self, client: QueueClient) -> None:
        self._client = client


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def export_service(state: WebState) -> ExportService:
    """The export service; the export routes exist only when it is configured."""
    if state.exports is None:
        raise RuntimeError("export routes are mounted only with an export service")
    return state.exports
