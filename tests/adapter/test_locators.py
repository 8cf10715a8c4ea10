"""adapter/locators.py without a Sentinel or a Cluster: which replies mean "moved", the key
layout a Cluster needs, and clients for one server built exactly as before."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)

from bullpen.adapter import connection_kwargs, redis_client, redis_pool
from bullpen.adapter.locators import (
    LOCATOR,
    SLOT_KEY,
    LocatedConnection,
    LocatedSSLConnection,
    for_queue,
    is_moved,
)
from bullpen.errors import ClusterKeyError
from bullpen.keyspace import check_cluster_keys, hash_tag_end


@pytest.mark.parametrize(("error", "moved"), [
    (MovedError("3999 127.0.0.1:7001"), True),
    (AskError("3999 127.0.0.1:7001"), True),
    (TryAgainError("Multiple keys request during rehashing of slot"), True),
    (ClusterDownError("The cluster is down"), True),
    (ReadOnlyError("You can't write against a read only replica."), True),
    (ResponseError("UNBLOCKED force unblock from blocking operation"), True),
    (ResponseError("MASTERDOWN Link with MASTER is down"), True),
    (ResponseError("ERR unknown command"), False),
    (ResponseError("NOSCRIPT No matching script"), False),
])
def test_only_not_here_replies_are_moves(error: Exception, moved: bool) -> None:
    assert is_moved(error) is moved


@pytest.mark.parametrize(("prefix", "queue", "tagged"), [
    ("{bull}", "reports", True),
    ("bull", "{reports}", True),
    ("b{x", "y}", True),  # Redis's rule: from the first { to the next }
    ("bull", "reports", False),
    ("bull", "{}", False),  # an empty tag hashes the whole key
    ("bull", "{reports", False),
])
def test_a_queue_is_tagged_when_its_keys_share_one_hash_tag(prefix: str, queue: str,
                                                            tagged: bool) -> None:
    key = f"{prefix}:{queue}:"
    end = hash_tag_end(key)
    assert (end is not None and end <= len(prefix) + len(queue)) is tagged
    if tagged:
        check_cluster_keys(prefix, [queue])
    else:
        with pytest.raises(ClusterKeyError, match=r"carry no hash tag.*WORKER_PREFIX=\{"):
            check_cluster_keys(prefix, [queue])


def test_every_untagged_queue_is_named_once() -> None:
    with pytest.raises(ClusterKeyError) as caught:
        check_cluster_keys("bull", ["{a}", "b", "c"])
    assert "queues 'b', 'c' (bull:b:…)" in str(caught.value)


def test_cluster_connections_refuse_an_untagged_queue_and_locate_tagged_ones() -> None:
    connection = connection_kwargs("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    with pytest.raises(ClusterKeyError):
        for_queue(connection, "bull", "reports")
    tagged = for_queue(connection, "bull", "{reports}")
    assert tagged[SLOT_KEY] == "bull:{reports}:meta"
    client = redis_client(tagged, decode_responses=True)
    assert client.connection_pool.connection_class is LocatedConnection
    assert client.connection_pool.connection_kwargs["bullpen_slot_key"] == "bull:{reports}:meta"
    tls = connection_kwargs("rediss+sentinel://h:26379/mymaster/0?ssl_cert_reqs=none")
    assert redis_client(tls).connection_pool.connection_class is LocatedSSLConnection
    assert redis_pool(tls, aioredis.ConnectionPool).connection_class is LocatedSSLConnection


def test_one_server_is_built_as_before() -> None:
    connection = connection_kwargs("rediss://:pw@cache.example.com:6380/2?ssl_cert_reqs=none")
    assert LOCATOR not in connection
    assert for_queue(connection, "bull", "reports") is connection  # no slot to find
    client = redis_client(connection)
    assert client.connection_pool.connection_class is SSLConnection
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example.com", 6380, 2)
    assert redis_pool(connection, aioredis.ConnectionPool).connection_class is SSLConnection
