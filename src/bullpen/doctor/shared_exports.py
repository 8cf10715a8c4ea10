"""Doctor: do the live workers write exports to the directory this host sees?"""

from __future__ import annotations

from bullpen.adapter import QueueClient
from bullpen.doctor.check import Check, fail, ok
from bullpen.errors import ClusterKeyError
from bullpen.exports.identity import FIX, mismatch_summary, read_identity, workers_elsewhere
from bullpen.runtime.heartbeat import WorkerInfo, alive_workers
from bullpen.settings import Settings

NAME = "shared exports"


async def _workers(loaded: Settings, url: str, queues: list[str]) -> list[WorkerInfo]:
    found: list[WorkerInfo] = []
    for queue in queues:
        try:
            client = QueueClient(url, queue, loaded.worker_prefix)
        except ClusterKeyError:
            continue  # the queue's own check says why no worker can serve it
        try:
            found += await alive_workers(client)
        finally:
            await client.close()
    return found


async def check_shared_exports(loaded: Settings, url: str, queues: list[str]) -> Check:
    """A web on this host serves what the workers wrote only if they share its EXPORT_DIR."""
    directory = loaded.export_path.absolute()
    own_id = read_identity(directory)
    workers = await _workers(loaded, url, queues)
    elsewhere = workers_elsewhere(own_id, workers)
    if elsewhere:
        paths = "; ".join(f"{worker.named()}: {worker.export_dir}" for worker in elsewhere[:5])
        return fail(NAME, f"{mismatch_summary(own_id, elsewhere, 'host')}. This host: "
                    f"{directory}; theirs: {paths}", FIX)
    publishing = {(info.host, info.pid) for info in workers if info.export_dir_id is not None}
    if not publishing:
        return ok(NAME, "no live worker publishes its export directory (none running, or an "
                  "older bullpen): nothing to compare")
    return ok(NAME, f"the {len(publishing)} live worker(s) write exports to {directory}, the "
              "directory this host sees")
