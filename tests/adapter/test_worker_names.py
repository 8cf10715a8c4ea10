"""Worker connection names and Node's matcher for them (pure, no Redis)."""

from __future__ import annotations

from bullpen.adapter.worker_names import (
    is_worker_connection,
    parse_client_list,
    queue_client_name,
    worker_client_name,
)


def test_names_are_node_s_base64_of_the_utf8_queue_name() -> None:
    # Checked against Node BullMQ 6.7.0 on the wire (docs: notes/consume-protocol.md).
    assert worker_client_name("bull", "cpA", "nodeW1") == "bull:Y3BB:w:nodeW1"
    assert worker_client_name("bull", "cpA2", None) == "bull:Y3BBMg=="
    assert queue_client_name("bull", "cpB-é") == "bull:Y3BCLcOp"


def test_only_the_queue_s_worker_connections_match() -> None:
    assert is_worker_connection("bull:Y3BB", "bull", "cpA")
    assert is_worker_connection("bull:Y3BB:w:host:42", "bull", "cpA")
    assert not is_worker_connection("bull:Y3BB:qe", "bull", "cpA")  # QueueEvents
    assert not is_worker_connection("bull:Y3BBMg==:w:x", "bull", "cpA")  # another queue
    assert not is_worker_connection("bull:cpA", "bull", "cpA")  # the port's old name


def test_client_list_lines_become_workers_with_their_names() -> None:
    text = ("id=1 addr=127.0.0.1:5000 fd=8 name=bull:Y3BB:w:web-1:4242 age=12 idle=0 cmd=bzpopmin\n"
            "id=2 addr=127.0.0.1:5001 fd=9 name= age=3 idle=3 cmd=evalsha\n"
            "id=3 addr=127.0.0.1:5002 fd=10 name=bull:Y3BB age=7 idle=1 cmd=bzpopmin\n")
    workers = parse_client_list(text, "bull", "cpA")
    assert [(w.name, w.raw_name, w.addr, w.age_s) for w in workers] == [
        ("web-1:4242", "bull:Y3BB:w:web-1:4242", "127.0.0.1:5000", 12),
        (None, "bull:Y3BB", "127.0.0.1:5002", 7)]
