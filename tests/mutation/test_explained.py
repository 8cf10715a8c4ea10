"""The mutation run's registry of explained survivors: names, matching and staleness (pure)."""

from __future__ import annotations

from pathlib import Path

from mutation import explained

DIFFS = {
    "bullpen.exports.sweep.x_shown__mutmut_8": 'return printable(x.decode("UTF-8"))',
    "bullpen.exports.sweep.xǁ_Sweeperǁvisit__mutmut_24": "if created > cutoff_s:",
    "bullpen.exports.sweep.x_sweep__mutmut_1": "progress_every: int = 501",
}


def test_short_names_drop_the_module_path_whatever_the_class() -> None:
    assert explained.short_name("bullpen.exports.sweep.x_shown__mutmut_8") == "x_shown__mutmut_8"
    assert explained.short_name("bullpen.adapter.runner.xǁJobRunnerǁ_fail__mutmut_9") \
        == "xǁJobRunnerǁ_fail__mutmut_9"


def test_a_survivor_is_explained_only_while_its_entry_still_names_its_change() -> None:
    entries = {
        "x_shown__mutmut_8": explained.Explanation('"UTF-8"', "codec names are case-insensitive"),
        # Written for another mutant that had this number before the function changed.
        "xǁ_Sweeperǁvisit__mutmut_24": explained.Explanation("kept += 2", "zero or not is read"),
    }
    verdict = explained.judge(list(DIFFS), entries, DIFFS.__getitem__)
    assert verdict.explained == {
        "bullpen.exports.sweep.x_shown__mutmut_8": "codec names are case-insensitive"}
    assert verdict.stale == ["bullpen.exports.sweep.xǁ_Sweeperǁvisit__mutmut_24"]
    assert verdict.unexplained == ["bullpen.exports.sweep.xǁ_Sweeperǁvisit__mutmut_24",
                                   "bullpen.exports.sweep.x_sweep__mutmut_1"]


def test_the_registry_is_read_per_module(tmp_path: Path) -> None:
    registry = tmp_path / "explained.toml"
    registry.write_text('[sweep]\n"x_shown__mutmut_8" = { change = "UTF", why = "same codec" }\n'
                        '[tokens]\n"x_a__mutmut_1" = { change = "b", why = "c" }\n')
    assert explained.load("sweep", registry) == {
        "x_shown__mutmut_8": explained.Explanation("UTF", "same codec")}
    assert explained.load("worker", registry) == {}
    assert explained.load("sweep", tmp_path / "missing.toml") == {}


def test_every_entry_in_the_project_registry_has_a_change_and_a_reason() -> None:
    for module in ("reconcile", "dispatch", "worker", "sweep", "tokens"):
        for name, entry in explained.load(module).items():
            assert "__mutmut_" in name and entry.change and len(entry.why) > 10, name
