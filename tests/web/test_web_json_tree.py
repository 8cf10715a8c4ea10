"""Job data as a collapsible tree: escaped, any depth Redis holds, bounded in size."""

from __future__ import annotations

from bullpen.web.json_tree import MAX_NODES, json_tree


def test_keys_and_values_are_escaped_and_typed() -> None:
    html = str(json_tree({"<b>key</b>": "<script>alert(1)</script>", "n": 3, "ok": True,
                          "none": None, "list": [1, "two"], "empty": {}}))
    assert "<script>" not in html and "<b>" not in html
    assert '<span class="j-num">3</span>' in html and '<span class="j-lit">true</span>' in html
    assert html.count("<details") == 2  # the object and its list; {} is shown as is
    assert "[…] 2 items" in html and "{}" in html


def test_deep_and_wide_values_render_bounded() -> None:
    deep: object = "bottom"
    for _ in range(200):
        deep = {"down": deep}
    html = str(json_tree(deep))
    assert html.count("<details") == 64 and "nested deeper than 64 levels" in html
    assert html.count("<details open") == 2  # the first two levels start open
    wide = str(json_tree(list(range(MAX_NODES * 3))))
    assert f"… {MAX_NODES * 2:,} more" in wide and wide.count('class="j-num"') < MAX_NODES
    assert str(json_tree("plain")) == ('<div class="json-tree"><span class="j-str">&#34;plain&#34;'
                                       '</span></div>')
