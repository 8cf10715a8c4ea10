"""Certificate files of a rediss:// URL checked before connecting, and TLS failures explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from bullpen.errors import SettingsError
from bullpen.redis_address import RedisUrlError, parse
from bullpen.redis_tls import check_files, explain
from bullpen.settings import load_settings
from tests.helpers.tls import Certificates, make_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def test_good_files_pass_and_plain_urls_are_not_checked(certs: Certificates) -> None:
    check_files(parse(f"rediss://h:6380/0?ssl_ca_certs={certs.ca}&ssl_certfile="
                      f"{certs.client_cert}&ssl_keyfile={certs.client_key}"))
    check_files(parse("redis://h:6379/0"))


@pytest.mark.parametrize(("query", "said"), [
    ("ssl_ca_certs={key}", "ssl_ca_certs file '{key}' holds no PEM certificate"),
    ("ssl_ca_certs={dir}", "ssl_ca_certs file '{dir}' is not a file"),
    ("ssl_keyfile={key}", "ssl_keyfile is set without ssl_certfile"),
    ("ssl_certfile={cert}&ssl_keyfile={other}", "ssl_certfile file '{cert}' and its key do not "
                                               "load"),
])
def test_bad_files_name_the_option_and_the_path(certs: Certificates, query: str,
                                                said: str) -> None:
    values = {"key": certs.client_key, "dir": certs.ca.parent, "cert": certs.client_cert,
              "other": certs.server_key}
    with pytest.raises(RedisUrlError) as raised:
        check_files(parse("rediss://h:6380/0?" + query.format(**values)))
    assert said.format(**values) in str(raised.value)


def test_settings_refuse_a_missing_file(offline_env: dict[str, str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_REDIS_URL", f"rediss://h:6380/0?ssl_ca_certs={tmp_path}/no.pem")
    with pytest.raises(SettingsError, match=r"WORKER_REDIS_URL=.*ssl_ca_certs file '.*no\.pem' "
                                            "does not exist"):
        load_settings()


@pytest.mark.parametrize(("url", "error", "said"), [
    ("rediss://h:6380", "[SSL: WRONG_VERSION_NUMBER] wrong version number",
     "does not speak TLS on port 6380"),
    ("redis://h:6380", "Error while reading from h:6380 : (104, 'Connection reset by peer')",
     "if the server accepts only TLS, use a rediss:// URL"),
    # Both of redis-py's wordings for a TLS server dropping a client without a certificate.
    ("rediss://h:6380", "Connection closed by server.", "the server refused the TLS connection"),
    ("rediss://h:6380", "Connection closed by the server before write",
     "the server refused the TLS connection"),
    ("redis://h:6380", "Error 111 connecting to h:6380. Connection refused.",
     "ConnectionError: Error 111 connecting to h:6380. Connection refused."),
])
def test_connection_errors_are_explained(url: str, error: str, said: str) -> None:
    assert said in explain(ConnectionError(error), parse(url))
