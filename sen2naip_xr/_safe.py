"""Safe text and JSON: secrets redacted from every recorded string, attributes as strict JSON.

Two helpers every stage uses before it records or prints anything:

- :func:`redact` removes signed-URL query values (SAS ``sig=``, ``se=``, AWS ``X-Amz-Signature``,
  ``Signature=``, ``token=`` ...), account keys (``AccountKey=...`` in connection strings) and
  ``Authorization``/``Bearer`` values from free text: failure reasons, provenance, log lines, exception
  messages. Redaction keeps the text readable: only the secret value becomes ``REDACTED``.
- :func:`json_safe` turns a value into plain, strict JSON: NaN and +-inf become ``null`` (the JSON
  standard has neither), numpy scalars and arrays become Python numbers and lists, timestamps ISO text;
  strings are never changed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

__all__ = ["redact", "json_safe", "dumps_strict", "REDACTED"]

REDACTED = "REDACTED"

# query / matrix parameters that carry a signature or a credential (case-insensitive). Separators:
# "?" / "&" for query strings, ";" for matrix parameters and connection strings.
_SECRET_PARAMS = (
    "sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
    "x-goog-credential", "token", "access_token", "sas", "skoid", "sktid", "skt", "ske", "sks", "skv",
    "accountkey", "sharedaccesssignature", "sharedaccesskey", "password", "secret", "client_secret",
    "api_key", "apikey",
)
_PARAM_RE = re.compile(
    r"(?P<sep>[?&;\s,\"'(]|^)(?P<key>" + "|".join(re.escape(k) for k in _SECRET_PARAMS) +
    r")(?P<eq>\s*=\s*)(?P<val>[^&;\s\"'<>)]+)",
    re.IGNORECASE,
)
_AUTH_RE = re.compile(r"(?P<key>\b(?:authorization|bearer|sharedkey)\b[:=\s]+)(?P<val>[A-Za-z0-9+/=._:\-]{8,})",
                      re.IGNORECASE)
# userinfo in URLs: scheme://user:password@host
_USERINFO_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^/@:\s]+):(?P<pw>[^/@\s]+)@", re.IGNORECASE)


def redact(text: Any) -> str:
    """``text`` (any value, as ``str``) with secret values replaced by ``REDACTED``.

    Parameters
    ----------
    text
        A message, URL, log line or repr that may hold a signed URL or a credential.

    Returns
    -------
    str
        The same text; the values of signature/credential parameters, ``AccountKey=`` and
        ``Authorization`` values and URL passwords replaced by ``REDACTED``.

    Examples
    --------
    >>> redact("Failed to load https://a.blob.core.windows.net/c/x.tif?st=1&se=2&sp=r&sig=abc%2F")
    'Failed to load https://a.blob.core.windows.net/c/x.tif?st=1&se=2&sp=r&sig=REDACTED'
    """
    s = str(text)
    s = _PARAM_RE.sub(lambda m: f"{m['sep']}{m['key']}{m['eq']}{REDACTED}", s)
    s = _AUTH_RE.sub(lambda m: f"{m['key']}{REDACTED}", s)
    s = _USERINFO_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", s)
    return s


def _plain(value: Any) -> Any:
    """``value`` as JSON-able Python (numbers, strings, lists, dicts), non-finite floats as ``None``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in seq]
    try:  # numpy without importing it
        import numpy as np

        if isinstance(value, np.generic):
            return _plain(value.item())
        if isinstance(value, np.ndarray):
            return _plain(value.tolist())
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "isoformat") and callable(value.isoformat):  # pandas.Timestamp, numpy datetime wrappers
        try:
            return str(value.isoformat())
        except (TypeError, ValueError):
            pass
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def json_safe(value: Any) -> Any:
    """``value`` as strict-JSON Python: NaN/inf -> ``None``, numpy -> Python, strings untouched.

    Parameters
    ----------
    value
        Attributes, a metadata record, any nesting of mappings and sequences.

    Returns
    -------
    Any
        An equivalent structure that ``json.dumps(..., allow_nan=False)`` accepts.
    """
    return _plain(value)


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(value)`` with ``allow_nan=False`` (valid JSON, always)."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)
