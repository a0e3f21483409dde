"""Safe text and JSON: secrets redacted from every recorded string, attributes as strict JSON.

Helpers every stage uses before it records or prints anything:

- :func:`redact` removes signed-URL query values (SAS ``sig=``, AWS ``X-Amz-Signature``,
  ``Signature=``, ``token=`` ...), account keys (``AccountKey=...`` in connection strings, a bare
  64-byte base64 Azure key, ``account_key='...'`` in a repr), ``Authorization``/``Bearer`` values
  and URL passwords from free text: failure reasons, provenance, log lines, exception messages.
  Redaction keeps the text readable: only the secret value becomes ``REDACTED``. It never breaks
  JSON text: redacting a valid JSON document gives a valid JSON document.
- :func:`clean_url` drops a whole SAS token (and any other credential parameter) from a URL: what
  provenance records as "the asset read".
- :func:`json_safe` turns a value into plain, strict JSON: NaN and +-inf become ``null`` (the JSON
  standard has neither), numpy scalars and arrays become Python numbers and lists, timestamps ISO text;
  strings are never changed. :func:`dumps_strict` is ``json.dumps`` of it with ``allow_nan=False``.
- :func:`install_log_redaction` makes every log record of the process pass through :func:`redact`
  (odc-stac's "Failed to load <signed url>", GDAL messages relayed by rasterio, dask/distributed
  task errors, ...). Importing :mod:`sen2naip_xr` installs it, so does every load task, so Dask
  worker processes have it too.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = [
    "redact",
    "redact_tree",
    "clean_url",
    "json_safe",
    "dumps_strict",
    "install_log_redaction",
    "RedactingFilter",
    "REDACTED",
    "SECRET_PARAMS",
    "SAS_PARAMS",
]

REDACTED = "REDACTED"

#: Names (case-insensitive) whose values are secrets: query/matrix parameters of signed URLs,
#: connection-string fields, keyword arguments and environment variables. A name also matches with
#: any prefix ending in ``_``, ``-`` or ``.`` (``X-Amz-Signature``, ``AZURE_STORAGE_ACCOUNT_KEY``).
SECRET_PARAMS: tuple[str, ...] = (
    "sig", "signature", "credential", "security_token", "session_token", "token", "access_token",
    "refresh_token", "id_token", "sas", "sas_token", "skoid", "sktid", "skt", "ske", "sks", "skv",
    "accountkey", "account_key", "access_key", "secret_access_key", "secret_key", "sharedaccesssignature",
    "sharedaccesskey", "password", "passwd", "pwd", "secret", "client_secret", "api_key", "apikey",
    "subscription_key", "subscription-key", "private_key", "bearer", "userpwd", "connection_string",
)

#: The parameters of an Azure SAS token (all dropped by :func:`clean_url`, with every secret name).
SAS_PARAMS: frozenset[str] = frozenset({
    "sig", "se", "st", "sp", "sv", "sr", "ss", "srt", "spr", "sip", "si", "sdd", "skoid", "sktid", "skt", "ske",
    "sks", "skv", "saoid", "suoid", "scid", "rscc", "rscd", "rsce", "rscl", "rsct",
})

_KEYS = "|".join(re.escape(k).replace("_", "[_-]?") for k in sorted(SECRET_PARAMS, key=len, reverse=True))
# a name that is secret: one of SECRET_PARAMS, alone or after prefix words ("X-Amz-", "AZURE_STORAGE_")
_SECRET_NAME_RE = re.compile(rf"(?:^|[_\-.])(?:{_KEYS})$", re.IGNORECASE)
_NAME_CHARS = r"A-Za-z0-9_\-."
# a name followed by "=" (or "%3D"), the name not glued to a preceding name character: every candidate
# "name=value"; the name is then checked in Python (one pass over the text, no large alternation per position)
_NAME_EQ_RE = re.compile(rf"(?<![{_NAME_CHARS}])(?P<key>[{_NAME_CHARS}]+)(?:\s*=\s*|%(?:25)?3D)", re.IGNORECASE)
# mappings: 'account_key': '...' (Python repr) or "sig": "..." (JSON), the value after the colon
_QUOTED_KEY_RE = re.compile(rf"(?P<kq>\\?[\"'])(?P<key>[{_NAME_CHARS}]+)(?P=kq)\s*:\s*(?=\\?[\"'])")
# a quoted value after "=": closed by the same quote, without a separator inside (so a quote that closes
# an enclosing JSON string is never taken for an opening one)
_QVALUE_RE = re.compile(r"(?P<q>\\?[\"'])(?P<v>[^\"'\\\r\n,:{}\[\]()]+)(?P=q)")
# an unquoted value: up to a query/field separator, whitespace, a quote or a bracket. A backslash is
# taken only with the character it escapes, and never an escaped quote, so JSON text stays valid.
_UVALUE_RE = re.compile(r"(?P<v>(?:[^&;\s\"'<>(){}\[\],\\]++|\\[^\"'\s])++)")  # possessive: linear time
# a quoted mapping value: up to its closing quote
_MVALUE_RE = re.compile(r"\\?[\"'](?P<v>[^\"'\\\r\n]*)")
# percent-encoded: "%3Fsig%3D...", "%26sig%3D..." (and their double-encoded "%253F...") inside URLs
_ENC_PARAM_RE = re.compile(
    rf"(?P<pre>%(?:25)?(?:3F|26|3B|20))(?P<key>{_KEYS})(?P<eq>%(?:25)?3D|\s*=\s*)(?P<val>(?:(?!%(?:25)?(?:26|3B|22|27))"
    r"[^&;\s\"'<>(){}\[\],\\])++)",
    re.IGNORECASE,
)
# HTTP headers: "Authorization: SharedKey acct:sig", "Proxy-Authorization=Bearer x"; the rest of the value
_HEADER_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<key>(?:proxy-)?authorization|ocp-apim-subscription-key|x-ms-copy-source-authorization)"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)(?P<val>[^\"'\\\r\n,}]+)",
    re.IGNORECASE,
)
# auth schemes written without a header name
_SCHEME_RE = re.compile(r"(?P<key>\b(?:[Bb]earer|SharedKey(?:Lite)?|SharedAccessSignature)\s+)(?P<val>[A-Za-z0-9+/=._:~\-%]{8,})")
# URL userinfo: scheme://user:password@host
_USERINFO_RE = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<user>[^/@:\s\"'\\]*):(?P<pw>[^/@\s\"'\\]+)@",
                          re.IGNORECASE)
# a bare Azure storage account key: 64 bytes, base64 (86 characters and "==")
_ACCOUNT_KEY_RE = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])")


def _is_secret_name(name: str) -> bool:
    return _SECRET_NAME_RE.search(name) is not None


def _sub_named(s: str, names: re.Pattern, values: tuple[re.Pattern, ...]) -> str:
    """``s`` with the value after each secret name found by ``names`` replaced by ``REDACTED``."""
    parts: list[str] = []
    last = 0
    for m in names.finditer(s):
        if m.start() < last:
            continue  # inside a value just redacted
        key = m["key"]
        secret = _is_secret_name(key)
        if not secret and m.start() and s[m.start() - 1] == "\\" and key[0] in "nrtbf":  # "\nsig=" in JSON text
            secret = _is_secret_name(key[1:])
        if not secret:
            continue
        for pattern in values:
            v = pattern.match(s, m.end())
            if v is not None:
                a, b = v.span("v")
                parts += [s[last:a], REDACTED]
                last = b
                break
    if not parts:
        return s
    parts.append(s[last:])
    return "".join(parts)


def _sub_value(m: re.Match) -> str:
    """The match with its ``val`` group replaced by ``REDACTED``."""
    start, end = m.span("val")
    s0 = m.start()
    text = m.group(0)
    return text[: start - s0] + REDACTED + text[end - s0 :]


def redact(text: Any) -> str:
    """``text`` (any value, as ``str``) with secret values replaced by ``REDACTED``.

    Parameters
    ----------
    text
        A message, URL, log line, JSON document or repr that may hold a signed URL or a credential.

    Returns
    -------
    str
        The same text; the values of signature/credential parameters (see :data:`SECRET_PARAMS`,
        also percent-encoded and as quoted mapping entries), ``Authorization`` header values, bare
        Azure account keys and URL passwords replaced by ``REDACTED``. Text without secrets is
        returned unchanged; ``redact(redact(t)) == redact(t)``; valid JSON stays valid JSON.

    Examples
    --------
    >>> redact("Failed to load https://a.blob.core.windows.net/c/x.tif?st=1&se=2&sp=r&sig=abc%2F")
    'Failed to load https://a.blob.core.windows.net/c/x.tif?st=1&se=2&sp=r&sig=REDACTED'
    >>> redact("DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=bXlrZXk=;EndpointSuffix=x")
    'DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=REDACTED;EndpointSuffix=x'
    """
    s = text if isinstance(text, str) else str(text)
    # each pattern runs only where its marker is in the text (most log lines have none)
    if ("'" in s or '"' in s) and ":" in s:
        s = _sub_named(s, _QUOTED_KEY_RE, (_MVALUE_RE,))
    low = s.lower()
    if "=" in s or "%3d" in low:
        s = _sub_named(s, _NAME_EQ_RE, (_QVALUE_RE, _UVALUE_RE))
    if "%" in s:
        s = _ENC_PARAM_RE.sub(_sub_value, s)
    if "authoriz" in low or "subscription-key" in low:
        s = _HEADER_RE.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", s)
    if "bearer" in low or "sharedkey" in low or "sharedaccesssignature" in low:
        s = _SCHEME_RE.sub(lambda m: f"{m['key']}{REDACTED}", s)
    if "://" in s and "@" in s:
        s = _USERINFO_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", s)
    if "==" in s:
        s = _ACCOUNT_KEY_RE.sub(REDACTED, s)
    return s


def _is_secret_param(name: str) -> bool:
    from urllib.parse import unquote

    key = unquote(name).strip().lower()
    return key in SAS_PARAMS or _is_secret_name(key)


def clean_url(href: Any) -> str:
    """``href`` without its SAS token or any other credential: what may be recorded as "read from".

    Query (``?a=1&sig=x``) and matrix (``;sig=x``) parameters that belong to an Azure SAS token
    (:data:`SAS_PARAMS`) or carry a secret (:data:`SECRET_PARAMS`) are dropped, with either ``&`` or
    ``;`` as the separator; the other parameters keep their text and order. A URL password is dropped
    too, and whatever is left goes through :func:`redact`.

    Examples
    --------
    >>> clean_url("https://a.blob.core.windows.net/c/x.tif?st=1&se=2&sp=r&sv=2021&sr=c&sig=abc")
    'https://a.blob.core.windows.net/c/x.tif'
    >>> clean_url("https://x/a.tif;sig=abc?version=2;token=t")
    'https://x/a.tif?version=2'
    """
    from urllib.parse import urlsplit, urlunsplit

    s = str(href)
    try:
        parts = urlsplit(s)
    except ValueError:  # not a URL (e.g. an unbalanced "[" in the host): redact the text only
        return redact(s)

    def keep(params: str) -> str:
        pieces = re.split(r"[&;]", params)
        seps = re.findall(r"[&;]", params)
        out = ""
        for i, p in enumerate(pieces):
            name = p.split("=", 1)[0]
            if not p or _is_secret_param(name):
                continue
            out += (seps[i - 1] if i and out else "") + p
        return out

    segments = []
    for seg in parts.path.split("/"):  # matrix parameters: /a.tif;sig=x
        name, semi, params = seg.partition(";")
        params = keep(params)
        segments.append(f"{name};{params}" if params else name)
    path = "/".join(segments)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{host}" if userinfo.split(":", 1)[0] else host
    return redact(urlunsplit(parts._replace(netloc=netloc, path=path, query=keep(parts.query))))


def redact_tree(value: Any) -> Any:
    """``value`` (mappings, sequences, strings, anything else as is) with its secrets replaced.

    Every string goes through :func:`redact`; the value of a mapping entry whose key names a secret
    (``{"account_key": ...}``, ``{"sig": ...}``: :data:`SECRET_PARAMS`) becomes ``REDACTED`` whatever
    it is. Tuples and sets become lists. Used for configurations recorded as provenance.

    Examples
    --------
    >>> redact_tree({"storage_options": {"account_name": "acc", "account_key": "c2VjcmV0"}, "n": 3})
    {'storage_options': {'account_name': 'acc', 'account_key': 'REDACTED'}, 'n': 3}
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            (redact(k) if isinstance(k, str) else k): (
                REDACTED if isinstance(k, str) and _is_secret_name(k.strip()) and v is not None else redact_tree(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_tree(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------
# strict JSON
def _plain(value: Any) -> Any:
    """``value`` as JSON-able Python (numbers, strings, lists, dicts), non-finite floats as ``None``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)  # np.str_ & co: the same characters
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Decimal):
        return _plain(float(value))
    if isinstance(value, Mapping):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_plain(v) for v in sorted(value, key=repr)]
    np = _numpy()
    if np is not None:
        if isinstance(value, (np.datetime64, np.timedelta64)) or (
            isinstance(value, np.ndarray) and value.dtype.kind in "mM"
        ):
            return _plain_time64(np, value)
        if isinstance(value, np.generic):
            return _plain(value.item())
        if isinstance(value, np.ndarray):
            return _plain(value.tolist())
    if _is_nat(value):
        return None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    if isinstance(value, complex):
        return str(value)
    if hasattr(value, "isoformat") and callable(value.isoformat):  # pandas.Timestamp, cftime dates
        try:
            return str(value.isoformat())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):  # pandas Index/Series, xarray values
        try:
            return _plain(value.tolist())
        except (TypeError, ValueError):
            pass
    return str(value)


def _key(k: Any) -> str:
    """A mapping key as JSON has it: a string (numbers and booleans spelled as ``json.dumps`` does)."""
    if isinstance(k, str):
        return str.__str__(k)
    plain = _plain(k)
    if plain is None or isinstance(plain, (bool, int, float)):
        return json.dumps(plain)
    return str(plain)


def _plain_time64(np: Any, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain_time64(np, v) for v in value]
    if np.isnat(value):
        return None
    if value.dtype.kind == "M":
        return str(np.datetime_as_string(value))
    return str(value)


def _is_nat(value: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return value is pd.NaT


def _numpy() -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return None
    return np


def json_safe(value: Any) -> Any:
    """``value`` as strict-JSON Python: NaN/inf -> ``None``, numpy -> Python, strings untouched.

    Parameters
    ----------
    value
        Attributes, a metadata record, any nesting of mappings and sequences.

    Returns
    -------
    Any
        An equivalent structure of ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``
        that ``json.dumps(..., allow_nan=False)`` accepts. Non-finite floats (Python, numpy, inside
        arrays) and NaT become ``None``; numpy datetimes ISO text; tuples and sets lists; mapping keys
        strings. Every string, key or value, keeps its exact characters (``"NaN"`` stays ``"NaN"``).

    Examples
    --------
    >>> json_safe({"qa": float("nan"), "note": "NaN means missing", "v": [1.5, float("inf")]})
    {'qa': None, 'note': 'NaN means missing', 'v': [1.5, None]}
    """
    return _plain(value)


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(value)`` with ``allow_nan=False``: valid JSON, always.

    ``kwargs`` go to :func:`json.dumps` (``indent``, ``sort_keys`` ...); ``allow_nan`` and ``default``
    are fixed by this function and may not be passed.
    """
    for fixed in ("allow_nan", "default"):
        if fixed in kwargs:
            raise TypeError(f"dumps_strict() fixes {fixed}=; drop the {fixed}= argument")
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


# ------------------------------------------------------------------------------------------------
# logs
def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact ``record``'s message, exception and stack text (idempotent).

    A record without secrets is left exactly as it was (formatters that read ``record.args``, such as
    access-log formatters, keep working). One with secrets gets its message formatted now, redacted,
    with no ``args``; its exception text is formatted now, redacted, and cached in ``exc_text`` (which
    :class:`logging.Formatter` prints instead of formatting the exception again).
    """
    if getattr(record, "_s2n_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format: logging reports it when the record is printed
        message = f"{record.msg} {record.args}"
    safe = redact(message)
    if safe != message:
        record.msg, record.args = safe, ()
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if redact(text) != text:
            record.exc_text = redact(text)
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._s2n_redacted = True
    return record


class RedactingFilter(logging.Filter):
    """A :class:`logging.Filter` that redacts a record's message, exception and stack text.

    :func:`install_log_redaction` already covers every record of the process; attach this filter to a
    handler of your own when you replace the log record factory yourself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_LOCK = threading.Lock()


def install_log_redaction() -> None:
    """Make every log record of this process pass through :func:`redact` (idempotent).

    Wraps the log record factory (:func:`logging.setLogRecordFactory`), so records of every logger
    are redacted when they are made, whichever handler then prints them: odc-stac/odc-loader,
    rasterio's relay of GDAL messages (``rasterio._env``), dask and distributed, the Azure and HTTP
    clients, and Python's last-resort stderr handler. A :class:`RedactingFilter` is also put on the
    root logger's handlers and on the last-resort handler, for records made by a factory installed
    later by someone else.
    """
    with _LOCK:
        factory = logging.getLogRecordFactory()
        if not getattr(factory, "_s2n_redacting", False):
            def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                return _redact_record(factory(*args, **kwargs))

            redacting_factory._s2n_redacting = True  # type: ignore[attr-defined]
            logging.setLogRecordFactory(redacting_factory)
        handlers = list(logging.getLogger().handlers)
        if logging.lastResort is not None:
            handlers.append(logging.lastResort)
        for handler in handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
