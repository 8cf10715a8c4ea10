"""A private CA, certificates it signs, and a TLS-only redis-server using them (openssl CLI)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.helpers.redis_server import free_port, server_binary

HOST = "localhost"  # the one name in the server certificate: 127.0.0.1 is a wrong host name


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM files: the CA, the server's certificate and key, a client certificate and key."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _signed(directory: Path, name: str, subject: str, extensions: str | None) -> None:
    _openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    extra: list[str] = []
    if extensions is not None:
        (directory / f"{name}.ext").write_text(extensions + "\n")
        extra = ["-extfile", f"{name}.ext"]
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *extra, cwd=directory)


def make_certificates(directory: Path) -> Certificates:
    """A CA and two certificates it signs: the server's (for `localhost` only) and a client's."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=bullpen test CA", cwd=directory)
    _signed(directory, "server", f"/CN={HOST}", f"subjectAltName=DNS:{HOST}")
    _signed(directory, "client", "/CN=bullpen client", None)
    return Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                        directory / "client.pem", directory / "client.key")


def _answers(port: int, certs: Certificates) -> bool:
    connection = redis.Redis(host=HOST, port=port, ssl=True, ssl_ca_certs=str(certs.ca),
                             ssl_certfile=str(certs.client_cert),
                             ssl_keyfile=str(certs.client_key), socket_timeout=1)
    try:
        return bool(connection.ping())
    except (redis.RedisError, ssl.SSLError, OSError):
        return False
    finally:
        connection.close()


@contextlib.contextmanager
def tls_redis(directory: Path, certs: Certificates, *, client_certs: bool = True
              ) -> Iterator[int]:
    """redis-server with TLS on a free port and no plain port (AOF on, noeviction); its port.

    With `client_certs` it refuses clients without a certificate the CA signed
    (`tls-auth-clients yes`)."""
    port = free_port()
    process = subprocess.Popen(
        [server_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
         "--tls-ca-cert-file", str(certs.ca),
         "--tls-auth-clients", "yes" if client_certs else "no",
         "--dir", str(directory), "--save", "", "--appendonly", "yes",
         "--maxmemory-policy", "noeviction", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port, certs):
            if process.poll() is not None:
                pytest.skip("redis-server was built without TLS support")
            assert time.monotonic() < deadline, "the TLS redis-server did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
