"""How guessable a secret is: its length, and an estimate of the randomness it holds.

The estimate is deliberately rough and errs low: character variety (Shannon entropy) counted
only at positions that do not merely continue a run (`aaaa`, `abcd`, `4321`), capped by how
far the secret compresses (repeated words). A secret from `secrets.token_urlsafe(32)` scores
about 200 bits; `aaaa…`, `abcdef…` or `password` repeated score far below any threshold.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import Counter

GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# Machine tokens as strong as the export secret; a basic-auth password is typed by people.
MIN_TOKEN_BYTES, MIN_TOKEN_BITS = 32, 96
MIN_PASSWORD_BYTES, MIN_PASSWORD_BITS = 16, 52


def estimated_bits(secret: str) -> float:
    """A low estimate of the bits of randomness in `secret`."""
    if not secret:
        return 0.0
    size = len(secret)
    counts = Counter(secret)
    per_char = -sum(n / size * math.log2(n / size) for n in counts.values())
    # A character one code point away from the previous one continues a run: no new choice.
    fresh = 1 + sum(1 for before, after in itertools.pairwise(secret)
                    if abs(ord(after) - ord(before)) > 1)
    encoded = secret.encode()
    compressed = len(zlib.compress(encoded, 9)) - len(zlib.compress(encoded[:1], 9)) + 1
    return max(0.0, min(per_char * fresh, compressed * 8.0))


def weakness(secret: str, min_bytes: int, min_bits: float) -> str | None:
    """Why `secret` is too weak (never quoting it), or None when it is strong enough."""
    if not secret:
        return "is empty"
    length = len(secret.encode())
    if length < min_bytes:
        return f"is {length} bytes, shorter than the {min_bytes} required"
    bits = estimated_bits(secret)
    if bits < min_bits:
        return (f"looks guessable: about {bits:.0f} bits of randomness, {min_bits:.0f} "
                "required (repeated, sequential or too few different characters)")
    return None


def web_credential_problems(token: str, basic: str, metrics_token: str) -> list[str]:
    """What is guessable in the dashboard's credentials, by variable (never by value)."""
    found = []
    for variable, value in (("WEB_AUTH_TOKEN", token), ("WEB_METRICS_TOKEN", metrics_token)):
        problem = value and weakness(value, MIN_TOKEN_BYTES, MIN_TOKEN_BITS)
        if problem:
            found.append(f"{variable} {problem}")
    if basic:
        user, _, password = basic.partition(":")
        if not user.strip():
            found.append("WEB_BASIC_AUTH has an empty user name")
        problem = weakness(password, MIN_PASSWORD_BYTES, MIN_PASSWORD_BITS)
        if problem:
            found.append(f"WEB_BASIC_AUTH's password {problem}")
    return found
