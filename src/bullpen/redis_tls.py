"""TLS for rediss:// URLs: certificate files checked before connecting, TLS failures explained.

OpenSSL reports a bad file or a refused certificate in terms of the socket ("No such file or
directory", "Connection reset by peer"); these messages name the URL option to change instead.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from bullpen.redis_address import RedisAddress, RedisUrlError, parse

CA_OPTION = "ssl_ca_certs"
CERT_OPTION = "ssl_certfile"
KEY_OPTION = "ssl_keyfile"
DOCS = "docs/deployment.md#tls"
CA_FIX = (f"for a server whose certificate your own CA signed, add {CA_OPTION}=/path/to/ca.pem "
          "to WORKER_REDIS_URL")
HOST_FIX = ("connect by a host name the server's certificate names (its subjectAltName), not "
            "by another name or address of the same server")
CLIENT_CERT_FIX = (f"if the server requires client certificates (tls-auth-clients yes), add "
                   f"{CERT_OPTION}=/path/to/client.pem&{KEY_OPTION}=/path/to/client.key")

# How OpenSSL and redis-py report a server that drops a connection: with TLS 1.3 a refused
# client certificate shows up as an alert or a reset on the first read, after the handshake.
# redis-py words a closed connection "closed by server" or "closed by the server before write".
_DROPPED = ("reset by peer", "Connection closed by server", "Connection closed by the server")
_REFUSED_CLIENT = (*_DROPPED, "CERTIFICATE_REQUIRED", "UNKNOWN_CA", "BAD_CERTIFICATE")


def _problem(option: str, path: str, what: str, fix: str) -> RedisUrlError:
    return RedisUrlError(f"Redis URL: {option} file {path!r} {what}; {fix} ({DOCS})")


def _readable(option: str, path: str, fix: str) -> None:
    file = Path(path)
    if not file.exists():
        raise _problem(option, path, "does not exist", fix)
    if not file.is_file():
        raise _problem(option, path, "is not a file", fix)
    if not os.access(file, os.R_OK):
        raise _problem(option, path, f"is not readable by uid {os.getuid()}",
                       "let the service user read it")


def check_files(address: RedisAddress) -> None:
    """Each certificate file a rediss:// URL names exists, is readable and is PEM that OpenSSL
    accepts; RedisUrlError naming the option and the path otherwise (paths are not secret)."""
    if not address.uses_tls:
        return
    ca, cert, key = (address.tls.get(name) for name in (CA_OPTION, CERT_OPTION, KEY_OPTION))
    if key is not None and cert is None:
        raise RedisUrlError(f"Redis URL: {KEY_OPTION} is set without {CERT_OPTION}; give the "
                            f"client certificate too ({DOCS})")
    context = ssl.create_default_context()
    if ca is not None:
        fix = "give the PEM file of the CA that signed the Redis server's certificate"
        _readable(CA_OPTION, ca, fix)
        try:
            context.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise _problem(CA_OPTION, ca, f"holds no PEM certificate OpenSSL accepts ({exc})",
                           fix) from None
    if cert is not None:
        fix = "give the client certificate (PEM) and, unless it holds it, its private key"
        _readable(CERT_OPTION, cert, fix)
        if key is not None:
            _readable(KEY_OPTION, key, fix)
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise _problem(CERT_OPTION, cert, "and its key do not load as a certificate and "
                           f"matching private key ({exc.reason or exc})", fix) from None


def explain(error: BaseException, address: RedisAddress) -> str:
    """What a failed connection means and what to change, for TLS failures; else the error.

    Only the error's own text is used: OpenSSL never puts a password in it.
    """
    text = str(error)
    tls = address.uses_tls
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = text.split("certificate verify failed:", 1)[-1].split(" (_ssl", 1)[0].strip()
        fix = HOST_FIX if "mismatch" in reason else CA_FIX
        return (f"TLS certificate verification failed ({reason.rstrip('.')}): {fix}; never "
                f"turn verification off with ssl_cert_reqs=none in production ({DOCS})")
    if tls and "WRONG_VERSION_NUMBER" in text:
        return (f"the server does not speak TLS on port {address.port}: use redis:// for a "
                f"plain port, or the server's tls-port ({DOCS})")
    if tls and "Timeout connecting" in text:
        # A plain Redis port reads the TLS greeting as the start of a command and waits.
        return (f"{text}: no TLS handshake; if port {address.port} is the server's plain "
                f"port, use redis:// or the server's tls-port ({DOCS})")
    if tls and any(sign in text for sign in _REFUSED_CLIENT):
        return f"the server refused the TLS connection ({text}): {CLIENT_CERT_FIX} ({DOCS})"
    if not tls and address.path is None and any(sign in text for sign in _DROPPED):
        return (f"{text}; if the server accepts only TLS, use a rediss:// URL "
                f"({DOCS})")
    return f"{type(error).__name__}: {text}"


def describe(error: BaseException, url: str) -> str:
    """`explain` for a URL (one that no longer parses gets the error alone)."""
    try:
        address = parse(url)
    except RedisUrlError:
        return f"{type(error).__name__}: {error}"
    return explain(error, address)
