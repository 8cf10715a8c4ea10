"""`client.exports`: create exports, sign download links, request exporter runs, serve tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Mapping
from typing import Any, Protocol

from bullpen.client.job import Job
from bullpen.errors import ExportError
from bullpen.exports import formats
from bullpen.exports.exporters import Exporter
from bullpen.exports.service import ExportService, IssuedToken, Source
from bullpen.exports.serving import Download, prepare_download
from bullpen.exports.store import Export
from bullpen.settings import Settings
from bullpen.tasks.create_export import parse_request

EXPORT_TASK = "exports.create"
ASYNC_BATCH_ROWS = 500


class _Enqueuer(Protocol):
    settings: Settings
    exporters: Mapping[str, Exporter] | None

    async def open(self) -> Any: ...

    async def enqueue(self, task: str, data: Any = None, *, delay_ms: int = 0,
                      job_id: str | None = None, attempts: int | None = None,
                      priority: int | None = None) -> Job: ...


def download_url(base_url: str, token: str | IssuedToken) -> str:
    """`<base_url>/exports/<token>`: base_url is where the download route is served (the
    dashboard's mount point, or the app's own route prefix)."""
    return f"{base_url.rstrip('/')}/exports/{token}"


class Exports:
    """Exports from the app: the same files, tokens and limits as the `exports.create` task.

    The export service is built on first use and needs EXPORT_TOKEN_SECRET (SecretError
    otherwise). File work runs in a thread, so the event loop never blocks on disk.
    """

    def __init__(self, client: _Enqueuer) -> None:
        self._client = client
        self._service: ExportService | None = None

    @property
    def service(self) -> ExportService:
        """The underlying ExportService (list, read, delete)."""
        if self._service is None:
            self._service = ExportService(self._client.settings)
        return self._service

    async def create(self, source: Source | AsyncIterable[formats.Row], *,
                     filename: str, format: str | None = None, content_type: str | None = None,
                     label: str | None = None, owner: str | None = None) -> Export:
        """Write rows (an iterable or async iterable of dicts, with `format` "csv" or "jsonl",
        or taken from the filename's extension), bytes or a binary file as a new export.

        Returns the export (id, filename, size_bytes, expires_at, …); `download_url` signs a
        link to it. Cleanup deletes it after EXPORT_MAX_FILE_AGE_HOURS.
        """
        if isinstance(source, AsyncIterable):
            return await self._create_from_async(source, filename, format, content_type,
                                                 label, owner)
        export, _token = await asyncio.to_thread(
            self.service.create, filename, source, format=format, content_type=content_type,
            label=label, owner=owner)
        return export

    async def _create_from_async(self, rows: AsyncIterable[formats.Row], filename: str,
                                 format: str | None, content_type: str | None,
                                 label: str | None, owner: str | None) -> Export:
        fmt = formats.check_format(format or filename.rpartition(".")[2].lower())
        writer = self.service.open_writer(filename, format=fmt, content_type=content_type,
                                          label=label, owner=owner)
        encoder = formats.encoder_for(fmt)
        with writer:
            batch: list[formats.Row] = []
            async for row in rows:
                batch.append(row)
                if len(batch) >= ASYNC_BATCH_ROWS:
                    await asyncio.to_thread(writer.write, _encoded(encoder, batch))
                    batch = []
            await asyncio.to_thread(writer.write, _encoded(encoder, batch) + encoder.finish())
            return await asyncio.to_thread(writer.commit)

    def token(self, export: Export | str, *, expires_minutes: float | None = None
              ) -> IssuedToken:
        """A signed download token (EXPORT_DEFAULT_EXPIRY_MINUTES unless given, never past the
        file's deletion); `str(token)` is the text for a URL."""
        return self.service.issue_token(export, expires_in_minutes=expires_minutes)

    def download_url(self, export: Export | str, *, base_url: str,
                     expires_minutes: float | None = None) -> str:
        """An absolute download link: `<base_url>/exports/<token>`.

        `base_url` is where downloads are served: the dashboard's mount point (for example
        "https://app.example.com/admin/jobs") or the prefix of the app's own download route.
        """
        return download_url(base_url, self.token(export, expires_minutes=expires_minutes))

    async def request(self, exporter: str, params: Mapping[str, Any] | None = None, *,
                      format: str = "csv", filename: str | None = None, label: str | None = None,
                      owner: str | None = None) -> Job:
        """Enqueue `exports.create` for a registered exporter; the job's result carries
        export_id, filename, size, rows, token, expires_at and download_path."""
        data: dict[str, Any] = {"exporter": exporter, "params": dict(params or {}),
                                "format": format}
        for key, value in (("filename", filename), ("label", label), ("owner", owner)):
            if value is not None:
                data[key] = value
        await self._client.open()
        if self._client.exporters is not None:
            # Known here only when the app's code is importable; the worker checks it anyway.
            parse_request(data, self._client.exporters)
        return await self._client.enqueue(EXPORT_TASK, data)

    def serve(self, token: str, *, range_header: str | None = None,
              if_range: str | None = None, head: bool = False) -> Download:
        """For apps that serve downloads themselves: the file and headers a token grants, or
        the 404/410/416 to answer. Blocking (it opens the file); see docs for Django/Flask."""
        return prepare_download(self.service, token, range_header=range_header,
                                if_range=if_range, open_file=not head)


def _encoded(encoder: formats.RowEncoder, rows: list[formats.Row]) -> bytes:
    for row in rows:
        if not isinstance(row, Mapping):
            raise ExportError(f"export rows must be mappings (dicts), got "
                              f"{type(row).__name__}: {row!r:.80}")
    return encoder.encode(rows)
