"""The port pieces bullpen still uses, pinned: a port upgrade that changes any fails here.

bullpen runs its own worker over the port's shipped Lua files and keeps the port's QueueKeys,
JobScheduler and Queue. An upgrade must be deliberate: update these pins after re-running the
interop and reliability suites against the new version (pure, no Redis).
"""

from __future__ import annotations

import importlib.metadata
import inspect

import bullmq
from bullmq.backends.redis_backend import RedisBackend
from bullmq.job import optsEncodeMap, optsFromJSON
from bullmq.job_scheduler import JobScheduler
from bullmq.queue_keys import QueueKeys
from bullmq.scripts import Scripts

from bullpen.adapter.scripts import WORKER_SCRIPTS, port_script

# SHA1 of each file bullpen runs; each equals Node BullMQ 6.7.0's script of the same name.
SCRIPT_SHA1 = {
    "moveToActive-11": "d96ca626f1ea141b44a856b312fc636d99aa9ea9",
    "moveToFinished-14": "69666e69dd5621df59067a03de685e55a486560d",
    "moveToDelayed-11": "9f83944d6edafd63c74121d73299dd3358ddfe0c",
    "retryJob-11": "812d06de3eaf0fb70e333b3d0142eed8bf630a2d",
    "extendLocks-1": "c35baf769e5dc3d9194b2bceca04ab59f7c510f7",
    "moveStalledJobsToWait-9": "1e9bb7deb6219644a634d32c430ce15ed39a377e",
    "updateProgress-3": "e992d1814b869c8def8e67ef117b3ed2cc95771f",
    "addLog-2": "eecb06ad6c96fa5da4fa8bca0ea7a1bf1bf62f18",
    "updateJobScheduler-12": "4da21b4a6efa92d4c0bdfc40e803ecc1e9ab4eb5",
    "moveJobFromActiveToWait-9": "2f746a769bc3d182a0f73ace6bb7a4906faf5df9",
}


def test_the_installed_port_is_the_pinned_version() -> None:
    assert importlib.metadata.version("bullmq") == "3.4.4"


def test_every_script_the_worker_runs_is_the_one_tested() -> None:
    assert set(WORKER_SCRIPTS) == set(SCRIPT_SHA1)
    found = {name: port_script(name).sha for name in WORKER_SCRIPTS}
    assert found == SCRIPT_SHA1


def test_queue_keys_name_bullmq_s_keys_as_before() -> None:
    keys = QueueKeys("bull").getKeys("q")
    assert keys == {name: f"bull:q:{name}" for name in (
        "", "active", "wait", "waiting-children", "paused", "completed", "failed", "delayed",
        "repeat", "stalled", "limiter", "prioritized", "id", "stalled-check", "meta", "pc",
        "events", "marker", "de")}


def test_job_scheduler_keeps_the_signatures_and_the_call_bullpen_relies_on() -> None:
    assert str(inspect.signature(JobScheduler.__init__)) == (
        "(self, queue: \"'Queue'\", repeat_strategy=None)")
    assert str(inspect.signature(JobScheduler.upsertJobScheduler)) == (
        "(self, job_scheduler_id: 'str', repeat_opts: 'RepeatOptions', job_name: 'str', "
        "job_data: 'Any' = None, opts: 'Optional[dict]' = None, override: 'bool' = True, "
        "producer_id: 'Optional[str]' = None) -> 'Optional[Job]'")
    for name in ("getJobSchedulers", "getScheduler", "removeJobScheduler"):
        assert callable(getattr(JobScheduler, name))
    # The worker's next iteration goes through this one backend call (adapter/repeat.py).
    source = inspect.getsource(JobScheduler.upsertJobScheduler)
    assert "self.backend.updateJobSchedulerNextMillis(" in source


def test_job_option_names_and_the_queue_methods_bullpen_calls() -> None:
    assert optsEncodeMap == {"failParentOnFailure": "fpof", "continueParentOnFailure": "cpof",
                             "ignoreDependencyOnFailure": "idof",
                             "removeDependencyOnFailure": "rdof", "keepLogs": "kl",
                             "deduplication": "de"}
    assert optsFromJSON({"kl": 5, "tm": "x"}) == {"keepLogs": 5, "tm": "x"}
    for name in ("add", "addBulk", "getJob", "getJobState", "getJobs", "getJobCounts",
                 "getJobLogs", "remove", "pause", "resume", "isPaused", "retryJobs", "close"):
        assert callable(getattr(bullmq.Queue, name)), name
    for name in ("retry", "promote"):
        assert callable(getattr(bullmq.Job, name)), name


def test_the_port_internals_queue_py_calls_keep_their_signatures() -> None:
    """QueueClient decodes jobs itself and keeps a due tick on update with these (queue.py)."""
    assert str(inspect.signature(bullmq.Job.fromJSON)) == (
        "(queue: 'Queue', rawData: 'dict', jobId: 'str | None' = None) -> 'Job'")
    assert str(inspect.signature(Scripts.getJobs)) == (
        "(self, types, start: 'int' = 0, end: 'int' = 1, asc: 'bool' = False)")
    assert str(inspect.signature(JobScheduler._build_next_job_opts)) == (
        "(self, next_millis: 'Optional[int]', job_scheduler_id: 'str', opts: 'dict', "
        "iteration_count: 'int', offset: 'Optional[int]') -> 'dict'")
    assert str(inspect.signature(RedisBackend.addJobScheduler)) == (
        "(self, job_scheduler_id: 'str', next_millis: 'Optional[int]', template_data: 'str', "
        "template_opts: 'dict', scheduler_opts: 'dict', delayed_job_opts: 'dict', "
        "producer_id: 'Optional[str]' = None)")
