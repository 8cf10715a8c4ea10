"""Row formats: CSV cells as spreadsheets read them (formulas defused), JSON Lines, batches."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from bullpen.errors import ExportError
from bullpen.exports.formats import encode_rows


def _csv(rows: list[Any], columns: list[str] | None = None, batch_rows: int = 500) -> str:
    return b"".join(encode_rows(rows, "csv", batch_rows, columns)).decode()


def _parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


class Label(str):
    """A str subclass: not the plain type the fast path takes."""


@pytest.mark.parametrize("value", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_formula_text_gets_an_apostrophe_wherever_it_sits_in_a_column(value: str) -> None:
    rows = [{"a": "plain"}, {"a": None}, {"a": value}, {"a": 3}]
    assert _parsed(_csv(rows)) == [["a"], ["plain"], [""], ["'" + value], ["3"]]


def test_formula_text_in_a_text_only_column() -> None:
    assert _parsed(_csv([{"a": "x"}, {"a": "=cmd"}])) == [["a"], ["x"], ["'=cmd"]]


def test_a_str_subclass_is_defused_too() -> None:
    assert _parsed(_csv([{"a": Label("=1")}, {"a": Label("ok")}])) == [["a"], ["'=1"], ["ok"]]


def test_plain_cells_pass_through() -> None:
    rows = [{"n": 1, "f": 2.5, "b": True, "t": "text, quoted", "z": None}]
    assert _csv(rows) == 'n,f,b,t,z\r\n1,2.5,True,"text, quoted",\r\n'


def test_dicts_and_lists_are_written_as_json() -> None:
    rows = [{"d": {"k": "é"}, "l": [1, "=x"]}, {"d": None, "l": []}]
    parsed = _parsed(_csv(rows))
    assert json.loads(parsed[1][0]) == {"k": "é"}
    assert json.loads(parsed[1][1]) == [1, "=x"]
    assert parsed[2] == ["", "[]"]


def test_other_mappings_and_missing_keys() -> None:
    rows: list[Mapping[str, Any]] = [MappingProxyType({"a": "=1", "b": 2}), {"a": "x"}]
    assert _parsed(_csv(list(rows))) == [["a", "b"], ["'=1", "2"], ["x", ""]]


def test_given_columns_order_the_cells_and_the_header_comes_once_over_batches() -> None:
    rows = [{"a": i, "b": f"r{i}"} for i in range(5)]
    assert _parsed(_csv(rows, ["b", "a"], batch_rows=2)) == [
        ["b", "a"], *[[f"r{i}", str(i)] for i in range(5)]]


def test_a_row_with_keys_that_are_not_columns_is_refused() -> None:
    with pytest.raises(ExportError, match=r"keys that are not columns: \['c'\]"):
        _csv([{"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}])


def test_no_rows_with_columns_gives_the_header_and_without_gives_nothing() -> None:
    assert _csv([], ["a", "b"]) == "a,b\r\n"
    assert _csv([]) == ""


def test_rows_without_columns_keep_one_line_each() -> None:
    assert _csv([{}, {}]) == "\r\n\r\n\r\n"


def test_json_lines_keep_text_as_is() -> None:
    rows: list[dict[str, Any]] = [{"a": "=1", "b": None}, {"a": "é"}]
    lines = b"".join(encode_rows(rows, "jsonl")).decode().splitlines()
    assert [json.loads(line) for line in lines] == rows


def test_rows_must_be_mappings() -> None:
    with pytest.raises(ExportError, match=r"must be mappings.*got list"):
        list(encode_rows([[1, 2]], "csv"))  # type: ignore[list-item]
