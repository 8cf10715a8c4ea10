"""The one Redis URL parser: every accepted form, every refusal, and a password that never shows
(not in a redacted URL, not in an error, not in repr(settings)), whatever characters it holds."""

from __future__ import annotations

import random
import string

import pytest

from bullpen.adapter import connection_kwargs
from bullpen.redis_address import RedisUrlError, parse, redact
from bullpen.settings import Settings

PASSWORD = "p/w#r?d@%25x"  # every character that breaks a naive urlsplit


@pytest.mark.parametrize(("url", "expected", "shown"), [
    ("redis://localhost:6379", ("localhost", 6379, 0, None, None), "redis://localhost:6379/0"),
    ("redis://h", ("h", 6379, 0, None, None), "redis://h:6379/0"),
    ("redis://:hunter2@127.0.0.1:6380/2", ("127.0.0.1", 6380, 2, None, "hunter2"),
     "redis://:***@127.0.0.1:6380/2"),
    ("redis://app:s3cret@h:1/0", ("h", 1, 0, "app", "s3cret"), "redis://app:***@h:1/0"),
    (f"redis://:{PASSWORD}@h:6379/1", ("h", 6379, 1, None, "p/w#r?d@%x"),
     "redis://:***@h:6379/1"),
    (f"redis://u:{PASSWORD}@h", ("h", 6379, 0, "u", "p/w#r?d@%x"), "redis://u:***@h:6379/0"),
    ("redis://h:6379/0?password=a%26b", ("h", 6379, 0, None, "a&b"), "redis://:***@h:6379/0"),
    ("redis://h:6379?password=se/cr#et?pw&db=3", ("h", 6379, 3, None, "se/cr#et?pw"),
     "redis://:***@h:6379/3"),
    ("redis://h/0?username=app&password=x", ("h", 6379, 0, "app", "x"),
     "redis://app:***@h:6379/0"),
    ("redis://[::1]:6379/0", ("::1", 6379, 0, None, None), "redis://[::1]:6379/0"),
    ("rediss://:pw@cache.example.com:6380/0?ssl_cert_reqs=none",
     ("cache.example.com", 6380, 0, None, "pw"),
     "rediss://:***@cache.example.com:6380/0?ssl_cert_reqs=none"),
    ("REDIS://H:1/0", ("H", 1, 0, None, None), "redis://H:1/0"),
])
def test_tcp_forms(url: str, expected: tuple[object, ...], shown: str) -> None:
    address = parse(url)
    assert (address.host, address.port, address.db, address.username,
            address.password) == expected
    assert redact(url) == shown


@pytest.mark.parametrize(("url", "path", "db", "password", "shown"), [
    ("unix:///run/redis.sock", "/run/redis.sock", 0, None, "unix:///run/redis.sock"),
    ("unix:///run/redis.sock?db=3", "/run/redis.sock", 3, None, "unix:///run/redis.sock?db=3"),
    (f"unix://:{PASSWORD}@/run/r.sock", "/run/r.sock", 0, "p/w#r?d@%x",
     "unix://:***@/run/r.sock"),
    ("unix:///run/r.sock?password=x#y", "/run/r.sock", 0, "x#y", "unix://:***@/run/r.sock"),
])
def test_unix_forms(url: str, path: str, db: int, password: str | None, shown: str) -> None:
    address = parse(url)
    assert (address.path, address.db, address.password) == (path, db, password)
    assert redact(url) == shown
    kwargs = connection_kwargs(url)
    assert kwargs["unix_socket_path"] == path and kwargs["password"] == password


def test_connection_options() -> None:
    kwargs = connection_kwargs(f"rediss://app:{PASSWORD}@h:6380/4?ssl_cert_reqs=none")
    assert {key: kwargs[key] for key in ("host", "port", "db", "username", "password", "ssl",
                                         "ssl_cert_reqs")} == {
        "host": "h", "port": 6380, "db": 4, "username": "app", "password": "p/w#r?d@%x",
        "ssl": True, "ssl_cert_reqs": "none"}
    assert kwargs["socket_timeout"] is None
    assert connection_kwargs("redis://[::1]:7000")["host"] == "::1"


@pytest.mark.parametrize(("url", "problem"), [
    ("", "empty"),
    ("localhost:6379", "no scheme"),
    ("http://h:6379", "unsupported scheme 'http'"),
    ("redis://h:notaport/0", "the port is not a number"),
    ("redis://h:70000", "the port is not a number"),
    ("redis://:6379", "no host name"),
    ("redis://h:6379/zero", "the database number"),
    ("redis://h:6379/0/1", "more than one /"),
    ("redis://h:6379/0?timeout=1", "unknown query option 'timeout'"),
    ("redis://h:6379/1?db=2", "two different database numbers"),
    ("redis://h/0?ssl_cert_reqs=none", "unknown query option 'ssl_cert_reqs'"),
    ("rediss://h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of none, optional"),
    ("unix://run/redis.sock", "needs an absolute path"),
    ("unix://", "needs an absolute path"),
])
def test_refusals_say_what_and_give_an_example(url: str, problem: str) -> None:
    with pytest.raises(RedisUrlError) as caught:
        parse(url)
    message = str(caught.value)
    assert problem in message and "e.g. redis://localhost:6379/0" in message


def _forms(password: str) -> list[str]:
    return [f"redis://:{password}@h:6379/0", f"redis://app:{password}@h:6379/0",
            f"redis://h:6379/0?password={password}", f"rediss://:{password}@h:6380/0",
            f"unix://:{password}@/run/redis.sock", f"redis://:{password}@h:notaport/0",
            f"redis://:{password}@:6379", f"redis://{password}@h/zero",
            f"redis://h:6379/0?password={password}&bogus=1",
            f"redis+sentinel://:{password}@h1,h2:26380/mymaster/0",
            f"redis+sentinel://h1/m/0?sentinel_password={password}",
            f"redis+sentinel://u:{password}@h1/m?sentinel_username=s&sentinel_password={password}",
            f"rediss+sentinel://:{password}@h1/m/0?ssl_cert_reqs=none",
            f"redis+sentinel://:{password}@h1,h2", f"redis+sentinel://h1/m?sentinel_password="
            f"{password}&bogus=1", f"redis+cluster://app:{password}@a:7000,b:7001",
            f"rediss+cluster://:{password}@a:7000", f"redis+cluster://:{password}@a:7000/3",
            f"redis+cluster://a:7000,b:x?password={password}"]


def test_no_form_ever_shows_a_password_or_part_of_it() -> None:
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits + "/#?@%:;&=+ !$'()*,[]~"
    for _ in range(300):
        password = "".join(rng.choice(alphabet) for _ in range(rng.randint(6, 24)))
        pieces = {password[i:i + 5] for i in range(len(password) - 4)}
        for url in _forms(password):
            texts = [redact(url)]
            try:
                parse(url)
            except RedisUrlError as exc:
                texts.append(str(exc))
            for text in texts:
                leaked = [piece for piece in pieces if piece in text
                          and piece not in url.replace(password, "")]
                assert not leaked, (url, text, leaked)


def test_repr_of_settings_never_shows_secrets() -> None:
    loaded = Settings(worker_redis_url=f"redis://:{PASSWORD}@h:6379/0",
                      export_token_secret="export-secret-Lp3Xq8Rz1Wv6Tk9Nm2Hc",
                      web_auth_token="web-token-Hq7Zt2Lm9Xr4Wc6Np1Vb",
                      web_metrics_token="metrics-Rk4Vz8Qp2Lx6Tm1Wn9Hb")
    for text in (repr(loaded), str(loaded)):
        assert "redis://:***@h:6379/0" in text
        for secret in ("p/w#r", "Lp3Xq8", "Hq7Zt2", "Rk4Vz8"):
            assert secret not in text


def test_settings_refuse_a_malformed_url_without_showing_it() -> None:
    with pytest.raises(ValueError) as caught:
        Settings(worker_redis_url=f"redis://:{PASSWORD}@h:notaport/0")
    assert "the port is not a number" in str(caught.value)
    assert "p/w#r" not in str(caught.value) and "notaport" not in str(caught.value)


@pytest.mark.parametrize(("url", "expected", "shown"), [
    ("redis+sentinel://h1:26379,h2:26380/mymaster/2",
     ((("h1", 26379), ("h2", 26380)), "mymaster", 2, None, None, None, None),
     "redis+sentinel://h1:26379,h2:26380/mymaster/2"),
    ("redis+sentinel://h1,[::1]/mymaster", ((("h1", 26379), ("::1", 26379)), "mymaster", 0,
                                           None, None, None, None),
     "redis+sentinel://h1:26379,[::1]:26379/mymaster/0"),
    (f"redis+sentinel://app:{PASSWORD}@h1/m/1?sentinel_username=sen&sentinel_password=s%26t",
     ((("h1", 26379),), "m", 1, "app", "p/w#r?d@%x", "sen", "s&t"),
     "redis+sentinel://app:***@h1:26379/m/1?sentinel_password=***&sentinel_username=sen"),
    ("rediss+sentinel://:pw@h1/m/0?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem",
     ((("h1", 26379),), "m", 0, None, "pw", None, None),
     "rediss+sentinel://:***@h1:26379/m/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=none"),
    ("redis+cluster://a:7000,b:7001", ((("a", 7000), ("b", 7001)), None, 0, None, None, None,
                                       None), "redis+cluster://a:7000,b:7001"),
    (f"redis+cluster://u:{PASSWORD}@a", ((("a", 6379),), None, 0, "u", "p/w#r?d@%x", None, None),
     "redis+cluster://u:***@a:6379"),
    ("rediss+cluster://:pw@a:7000/?ssl_cert_reqs=required",
     ((("a", 7000),), None, 0, None, "pw", None, None),
     "rediss+cluster://:***@a:7000?ssl_cert_reqs=required"),
])
def test_sentinel_and_cluster_forms(url: str, expected: tuple[object, ...], shown: str) -> None:
    address = parse(url)
    assert (address.nodes, address.master_name, address.db, address.username, address.password,
            address.sentinel_username, address.sentinel_password) == expected
    assert address.topology == url.partition("://")[0].partition("+")[2]
    assert redact(url) == shown
    assert "pw" not in repr(address) and "s&t" not in repr(address)


@pytest.mark.parametrize(("url", "problem"), [
    ("redis+sentinel://h1,h2", "no master name"),
    ("redis+sentinel://h1,h2/", "no master name"),
    ("redis+sentinel:///mymaster/0", "no hosts"),
    ("redis+sentinel://h1,,h2/m", "an empty entry in the host list"),
    ("redis+sentinel://h1,/m", "an empty entry in the host list"),
    ("redis+sentinel://h:0/m", "the port is not a number"),
    ("redis+sentinel://h:x/m", "the port is not a number"),
    ("redis+sentinel://h/m/zero", "the database number"),
    ("redis+sentinel://h/m/0/1", "/<master-name>/<db> and nothing else"),
    ("redis+sentinel://h/m%20x", "the master name may hold only"),
    ("redis+sentinel://h/m?sentinel_pass=x", "unknown query option 'sentinel_pass'"),
    ("redis+sentinel://h/m?ssl_cert_reqs=none", "unknown query option 'ssl_cert_reqs'"),
    ("rediss+sentinel://h/m?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
    ("redis+cluster://", "no hosts"),
    ("redis+cluster://a:7000,b:99999", "the port is not a number"),
    ("redis+cluster://a:7000/1", "Redis Cluster has only database 0"),
    ("redis+cluster://a:7000/0", "Redis Cluster has only database 0"),
    ("redis+cluster://a:7000?db=1", "Redis Cluster has only database 0"),
    ("redis+cluster://a?sentinel_password=x", "unknown query option (known: db"),
    ("redis+cluster://a?ssl_cert_reqs=none", "unknown query option 'ssl_cert_reqs'"),
])
def test_topology_refusals_name_the_form(url: str, problem: str) -> None:
    with pytest.raises(RedisUrlError) as caught:
        parse(url)
    message = str(caught.value)
    form = "redis+sentinel://" if "sentinel" in url.partition("://")[0] else "redis+cluster://"
    assert problem in message and f"expected {form}[user:password@]host1:" in message
