"""What the store must never hold: secrets (tokens, passwords, keys) are replaced by
:data:`REDACTED` before text is kept or shown (:func:`redact`, :func:`redact_text`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

# -- secrets -----------------------------------------------------------------------------

REDACTED = "<redacted>"

#: Names (environment variables, parameters, keys of a mapping) whose values are secrets:
#: ``JUPYTER_TOKEN``, ``PASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ``tls_client_key``, ...
SECRET_NAME = re.compile(
    r"passw(?:or)?d|secret|credential|private_?key|apikey|(?:^|[^a-z0-9])(?:api_?|auth_?)?(?:token|key)(?:$|[^a-z0-9])",
    re.IGNORECASE,
)
_URL_SECRET = re.compile(
    r"([?&;#][\w.\-]*(?:token|passw(?:or)?d|secret|key|signature|sig)=)[^&#\s\"'<>\\:,;)\]]+", re.IGNORECASE
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@\"'<>]*:)[^@/\s\"'<>]+@", re.IGNORECASE)
_PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL)

#: Shorter values of secret-named variables (``1``, ``true``) are not searched for in text.
MIN_SECRET_LENGTH = 6


def is_secret_name(name: str) -> bool:
    """Whether a variable, parameter or key called ``name`` holds a secret.

    >>> [is_secret_name(n) for n in ("JUPYTER_TOKEN", "PGPASSWORD", "tls_client_key", "tokens", "keep_inputs")]
    [True, True, True, False, False]
    """
    return bool(SECRET_NAME.search(name))


def secret_values(environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The text to take out wherever it appears, longest first.

    Parameters
    ----------
    environ : mapping, optional
        Environment variables (default ``os.environ``); the values of those with a secret
        name (:func:`is_secret_name`) count.
    extra : iterable of str
        More secrets, e.g. the values of a notebook's secret-named parameters.

    Values shorter than :data:`MIN_SECRET_LENGTH` are left out: ``1`` or ``true`` would
    blank out ordinary text.
    """
    env = os.environ if environ is None else environ
    found = {v.strip() for k, v in env.items() if is_secret_name(k)} | {str(v).strip() for v in extra}
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with its secrets replaced by :data:`REDACTED`.

    Parameters
    ----------
    text : str
    secrets : iterable of str, optional
        The values to take out (default: :func:`secret_values` of this environment).

    Besides those values, private keys in PEM form go, and so do the secret parameters of
    URLs (``token=``, ``password=``, ``key=``, ``sig=``, ...) and the passwords in them.

    >>> redact_text("http://127.0.0.1:8888/lab?token=abc123&x=1 and tcp://ann:hunter22@host:8786", [])
    'http://127.0.0.1:8888/lab?token=<redacted>&x=1 and tcp://ann:<redacted>@host:8786'
    """
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    if "PRIVATE KEY-----" in text:
        text = _PRIVATE_KEY.sub(f"-----{REDACTED} private key-----", text)
    text = _URL_SECRET.sub(rf"\1{REDACTED}", text)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


def redact(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """``value`` with its secrets replaced by :data:`REDACTED`.

    Parameters
    ----------
    value : dict, list, tuple, str or any
        Nested as JSON is (an environment snapshot, a config, a notebook). The text under a
        secret-named key (:func:`is_secret_name`) goes whole; other text as :func:`redact_text`
        says; image data (keys ``image/...``) and non-text values stay as they are.
    secrets : iterable of str, optional
        As for :func:`redact_text`.

    >>> redact({"password": "pw", "url": "https://h/x?api_key=k1", "n": [1, "a"]}, [])
    {'password': '<redacted>', 'url': 'https://h/x?api_key=<redacted>', 'n': [1, 'a']}
    """
    found = secret_values() if secrets is None else list(secrets)
    return _redact(value, found)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and k.startswith("image/"):
                out[k] = v
            elif isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and v:
                out[k] = REDACTED
            else:
                out[k] = _redact(v, secrets)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, secrets) for v in value) if not hasattr(value, "_fields") else value
    return value
