"""Task `exports.create`: stream a registered exporter's rows into an export, return its token."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bullpen.definitions.task import Handler
from bullpen.errors import ExportError, SecretError, UnrecoverableJobError
from bullpen.exports import formats
from bullpen.exports.exporters import Exporter, ExportSource, get_exporter, parse_params
from bullpen.exports.service import ExportService
from bullpen.exports.store import Export, ExportWriter
from bullpen.runtime.context import JobContext

_KNOWN_KEYS = frozenset({"exporter", "params", "format", "filename", "label", "owner"})


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """The job data of `exports.create`, checked."""

    exporter: Exporter
    params: Any
    format: str
    filename: str
    label: str | None
    owner: str | None


def _text_or_none(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ExportError(f"exports.create: {key!r} must be a string, got {value!r:.80}")
    return value


def parse_request(data: Any, registry: Mapping[str, Exporter] | None = None) -> ExportRequest:
    """The job data checked up front, so bad input fails the job once, without retries.

    Exporters are looked up in `registry` (bullpen's own plus the app's), else bullpen's own.
    """
    if not isinstance(data, Mapping):
        raise ExportError('exports.create: job data must be an object such as '
                          '{"exporter": "jobs.history", "format": "csv", "params": {}}')
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ExportError(f"exports.create: unknown keys {unknown} "
                          f"(allowed: {', '.join(sorted(_KNOWN_KEYS))})")
    exporter = get_exporter(data.get("exporter"), registry)
    fmt = formats.check_format(data.get("format", "csv"))
    stem = _text_or_none(data, "filename") or exporter.default_filename
    return ExportRequest(
        exporter=exporter, params=parse_params(exporter, data.get("params")), format=fmt,
        filename=stem if "." in stem else f"{stem}.{formats.extension_for(fmt)}",
        label=_text_or_none(data, "label"), owner=_text_or_none(data, "owner"),
    )


async def _fill(writer: ExportWriter, request: ExportRequest, source: ExportSource,
                ctx: JobContext) -> int:
    """Write every page; file writes happen in a thread so the event loop never blocks."""
    encoder = formats.encoder_for(request.format, request.exporter.columns)
    rows = 0
    async for page in request.exporter.pages(source, request.params):
        await asyncio.to_thread(writer.write, encoder.encode(page))
        rows += len(page)
        ctx.progress({"rows": rows})
    await asyncio.to_thread(writer.write, encoder.finish())
    return rows


def export_task(registry: Mapping[str, Exporter] | None = None) -> Handler:
    """The `exports.create` handler over `registry`; the loader binds the app's exporters."""

    async def create_export(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return await _create(registry, data, ctx)

    return create_export


async def _create(registry: Mapping[str, Exporter] | None, data: dict[str, Any],
                  ctx: JobContext) -> dict[str, Any]:
    try:
        request = parse_request(data, registry)
        service = ExportService(ctx.settings)
        writer = service.open_writer(request.filename, format=request.format,
                                     label=request.label, owner=request.owner)
    except (ExportError, SecretError) as exc:
        # Retrying cannot fix bad input or configuration: fail once, with the reason.
        raise UnrecoverableJobError(str(exc)) from None
    with writer:
        rows = await _fill(writer, request, ExportSource(ctx.settings, ctx.queue), ctx)
        export: Export = await asyncio.to_thread(writer.commit)
    issued = service.issue_token(export)
    ctx.log(f"export {export.id}: {rows} rows, {export.size_bytes} bytes, "
            f"token valid until {issued.expires_at.isoformat()}")
    return {
        "export_id": export.id, "filename": export.filename, "size": export.size_bytes,
        "rows": rows, "token": issued.token, "expires_at": issued.expires_at.isoformat(),
        "download_path": f"/exports/{issued.token}",
        "created_at": export.created_at.isoformat(),
    }


create_export = export_task()
