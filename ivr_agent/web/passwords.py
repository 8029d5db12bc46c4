"""Password hashing: scrypt with a per-user random salt, constant-time comparison."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from typing import Final

# n=2**14, r=8: 16 MiB and ~50 ms per hash on the lab machine: slow for a guesser, fine for a
# login. The parameters are stored with each hash, so they can be raised later.
_N: Final = 2**14
_R: Final = 8
_P: Final = 1
_DKLEN: Final = 32
MIN_LENGTH: Final = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = _N) -> str:
    """`scrypt$n$r$p$salt$hash` (base64 salt and hash)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${n}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches `stored`; False for a wrong password or a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def dummy_hash() -> str:
    """Verified against when the user name is unknown, so that a wrong name costs the same time
    as a wrong password (no user enumeration by timing)."""
    return hash_password(secrets.token_urlsafe(16))


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if password != password.strip():
        return "a password must not start or end with spaces"
    return None
