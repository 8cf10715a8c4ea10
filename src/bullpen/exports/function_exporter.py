"""`@exporter`: an app's row function (sync or async generator) as a named exporter.

The rows stream a page at a time: a sync function (a database cursor, say) is read in a
thread, page by page, so the worker's event loop never waits on the database; an async
generator is read on the loop. Declared exporters are found by the loader in `<app>.exporters`.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from bullpen.errors import ExporterError
from bullpen.exports.exporters import ExportSource, Page

RowFunction = Callable[..., Any]
_declared: list[FunctionExporter] = []


class FunctionExporter:
    """An exporter made from a function `f()`, `f(params)` or `f(params, source)` that returns
    or yields row dicts; `params` is validated by the pydantic model given, else a dict."""

    def __init__(self, name: str, rows: RowFunction, *, columns: Sequence[str] = (),
                 filename: str | None = None, params: type[BaseModel] | None = None,
                 page_size: int = 500) -> None:
        if not name or not isinstance(name, str):
            raise ExporterError(f"exporter name {name!r}: expected a non-empty string such as "
                                "'orders.csv'")
        arity = len([p for p in inspect.signature(rows).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        if arity > 2:
            raise ExporterError(f"exporter {name!r}: {rows.__qualname__} takes {arity} arguments"
                                " (expected f(), f(params) or f(params, source))")
        self.name = name
        self.rows = rows
        self.columns = tuple(columns)
        self.default_filename = filename or name.replace(".", "-")
        self._params_model = params
        self._arity = arity
        self._page_size = page_size
        self.__doc__ = rows.__doc__
        # A module imported again (a reload) declares again: the new exporter replaces the old.
        _declared[:] = [item for item in _declared if item._key != self._key]
        _declared.append(self)

    def __repr__(self) -> str:
        return f"<exporter {self.name!r}: {getattr(self.rows, '__qualname__', self.rows)}>"

    @property
    def module(self) -> str:
        return str(getattr(self.rows, "__module__", ""))

    @property
    def _key(self) -> tuple[str, str, str]:
        return self.name, self.module, str(getattr(self.rows, "__qualname__", ""))

    def parse_params(self, params: Mapping[str, Any]) -> Any:
        if self._params_model is None:
            return dict(params)
        return self._params_model.model_validate(dict(params))

    async def pages(self, source: ExportSource, params: Any) -> AsyncIterator[Page]:
        args = (params, source)[: self._arity]
        if inspect.isasyncgenfunction(self.rows):
            async for page in self._async_pages(self.rows(*args)):
                yield page
            return
        rows: Iterator[Any] = await asyncio.to_thread(lambda: iter(_checked(self.rows(*args))))
        while page := await asyncio.to_thread(_take, rows, self._page_size):
            yield page

    async def _async_pages(self, rows: AsyncIterator[Any]) -> AsyncIterator[Page]:
        page: Page = []
        async for row in rows:
            page.append(row)
            if len(page) >= self._page_size:
                yield page
                page = []
        if page:
            yield page


def _checked(rows: Any) -> Iterable[Any]:
    if not isinstance(rows, Iterable) or isinstance(rows, (str, bytes, Mapping)):
        raise ExporterError(f"an exporter function must return or yield row dicts, got "
                            f"{type(rows).__name__}")
    return rows


def _take(rows: Iterator[Any], count: int) -> Page:
    return list(itertools.islice(rows, count))


def exporter(name: str, *, columns: Sequence[str] = (), filename: str | None = None,
             params: type[BaseModel] | None = None, page_size: int = 500
             ) -> Callable[[RowFunction], FunctionExporter]:
    """Declare an exporter in `<app>/exporters.py`; `client.exports.request(name, params)` runs
    it in a worker and writes its rows as CSV or JSON Lines."""

    def declare(rows: RowFunction) -> FunctionExporter:
        return FunctionExporter(name, rows, columns=columns, filename=filename, params=params,
                                page_size=page_size)

    return declare


def declared_in(package: str) -> list[FunctionExporter]:
    """Exporters declared by modules of `package` (the package itself or below it)."""
    return [item for item in _declared
            if item.module == package or item.module.startswith(package + ".")]
