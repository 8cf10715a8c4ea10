"""Finish options: removeOnComplete/removeOnFail as the finish script reads them (pure)."""

from __future__ import annotations

import msgpack

from bullpen.adapter.plans import Plans, keep_jobs


def test_keep_jobs_follows_node_s_rules() -> None:
    assert keep_jobs(None, None) == {"count": -1}  # keep everything
    assert keep_jobs(None, 1000) == {"count": 1000}  # the worker's default
    assert keep_jobs(True, 1000) == {"count": 0} and keep_jobs(False, 5) == {"count": -1}
    assert keep_jobs(7, None) == {"count": 7}
    assert keep_jobs({"age": 60, "count": 5}, None) == {"age": 60, "count": 5}


def test_finish_options_carry_the_worker_name_and_metrics_and_are_packed_once() -> None:
    plans = Plans("host:1", {"max": 10, "duration": 1000}, 30_000, 10_080, 1000, None)
    raw = b'{"attempts":3,"removeOnFail":{"count":50}}'
    plan = plans.plan("w:0", "7", raw)
    assert plans.plan("w:0", "8", raw) is plan  # same token and options: same bytes
    completed = msgpack.unpackb(plan.completed_opts)
    assert completed == {
        "token": "w:0", "name": "host:1", "keepJobs": {"count": 1000},
        "limiter": {"max": 10, "duration": 1000}, "lockDuration": 30_000, "attempts": 3,
        "maxMetricsSize": 10_080, "fpof": False, "cpof": False, "idof": False, "rdof": False}
    assert msgpack.unpackb(plan.failed_opts)["keepJobs"] == {"count": 50}
    assert msgpack.unpackb(Plans(None, None, 5, 0, None, None).plan(
        "t", "1", None).completed_opts)["maxMetricsSize"] == ""  # metrics off
