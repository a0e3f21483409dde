"""``sen2naip_xr._safe``: secrets redacted from recorded text and logs, strict JSON with strings untouched."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sen2naip_xr._safe import (
    REDACTED,
    SECRET_PARAMS,
    RedactingFilter,
    clean_url,
    dumps_strict,
    install_log_redaction,
    json_safe,
    redact,
)

REPO = Path(__file__).resolve().parents[1]
#: The Azure Storage emulator's public development account key (documented by Microsoft for Azurite).
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EMULATOR_CS = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
               f"AccountKey={EMULATOR_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
SIGNED = ("https://naipeuwest.blob.core.windows.net/naip/v002/ca/m_1.tif"
          "?st=2026-12-01T21%3A00%3A00Z&se=2026-12-01T22%3A00%3A00Z&sp=rl&sv=2021-06-08&sr=c&sig=Ab%2Bc%2FdE%3D")
#: a ``sig=`` whose value is not ``REDACTED``
LEAK = re.compile(r"(?<![A-Za-z0-9])sig\s*=\s*(?!REDACTED)[^&;\s\"'<>(){}\[\],\\]")


# ------------------------------------------------------------------------------------------------
# redact: examples
@pytest.mark.parametrize(("text", "expected"), [
    (f"Failed to load {SIGNED}:1 due to rasterio error: 'HTTP response code: 404'",
     "Failed to load https://naipeuwest.blob.core.windows.net/naip/v002/ca/m_1.tif?st=2026-12-01T21%3A00%3A00Z"
     "&se=2026-12-01T22%3A00%3A00Z&sp=rl&sv=2021-06-08&sr=c&sig=REDACTED due to rasterio error: "
     "'HTTP response code: 404'"),
    ("'/vsicurl/http://127.0.0.1:9/blob/a.tif?st=1&sig=tok1' not recognized as being in a supported file format.",
     "'/vsicurl/http://127.0.0.1:9/blob/a.tif?st=1&sig=REDACTED' not recognized as being in a supported file format."),
    ("https://x/a.tif;sig=abc;v=2", "https://x/a.tif;sig=REDACTED;v=2"),
    ("https://x/a.tif?se=1;sig=abc", "https://x/a.tif?se=1;sig=REDACTED"),
    (EMULATOR_CS, EMULATOR_CS.replace(EMULATOR_KEY, REDACTED)),
    (f"storage_options={{'account_name': 'devstoreaccount1', 'account_key': '{EMULATOR_KEY}'}}",
     "storage_options={'account_name': 'devstoreaccount1', 'account_key': 'REDACTED'}"),
    (f"AzureStore(account_key='{EMULATOR_KEY}', use_emulator=True)", "AzureStore(account_key='REDACTED', use_emulator=True)"),
    (f"export AZURE_STORAGE_ACCOUNT_KEY={EMULATOR_KEY}", "export AZURE_STORAGE_ACCOUNT_KEY=REDACTED"),
    (f"--storage-option account_key={EMULATOR_KEY}", "--storage-option account_key=REDACTED"),
    (f"the key {EMULATOR_KEY} was refused", "the key REDACTED was refused"),
    ("s3://b/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F20260101&X-Amz-Signature=0f3a&X-Amz-Date=1",
     "s3://b/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Date=1"),
    ("gs://b/o?X-Goog-Signature=abc123&x=1", "gs://b/o?X-Goog-Signature=REDACTED&x=1"),
    ("Authorization: SharedKey devstoreaccount1:c2lnbmF0dXJl", "Authorization: REDACTED"),
    ("{'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.x', 'x-ms-version': '2021'}",
     "{'Authorization': 'REDACTED', 'x-ms-version': '2021'}"),
    ("token refused: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "token refused: Bearer REDACTED"),
    ("Ocp-Apim-Subscription-Key: 0123456789abcdef0123456789abcdef", "Ocp-Apim-Subscription-Key: REDACTED"),
    ("postgresql://stac:hunter2@127.0.0.1:5432/pgstac", "postgresql://stac:REDACTED@127.0.0.1:5432/pgstac"),
    ('{"msft:expiry": "2026-12-01T22:00:00Z", "token": "st=1&se=2&sp=rl&sig=tok1"}',
     '{"msft:expiry": "2026-12-01T22:00:00Z", "token": "REDACTED"}'),
    ("/vsicurl?url=https%3A%2F%2Fa%2Fx.tif%3Fse%3D1%26sig%3Dab%252Fc%26x%3D1",
     "/vsicurl?url=https%3A%2F%2Fa%2Fx.tif%3Fse%3D1%26sig%3DREDACTED%26x%3D1"),
    ("a multi-line log\\nsig=abc", "a multi-line log\\nsig=REDACTED"),
    ("GDAL_HTTP_BEARER=eyJ0 GDAL_HTTP_USERPWD=user:pw GDAL_HTTP_TIMEOUT=2",
     "GDAL_HTTP_BEARER=REDACTED GDAL_HTTP_USERPWD=REDACTED GDAL_HTTP_TIMEOUT=2"),
    ("AWS_SECRET_ACCESS_KEY=abc AWS_SESSION_TOKEN=def AWS_ACCESS_KEY_ID=AKIA",
     "AWS_SECRET_ACCESS_KEY=REDACTED AWS_SESSION_TOKEN=REDACTED AWS_ACCESS_KEY_ID=AKIA"),
])
def test_redact_examples(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize("text", [
    "HTTP response code: 404",
    "design=3 tokens=4 the token is here; the signature of the API; authorization failed",
    "https://planetarycomputer.microsoft.com/api/stac/v1/search?collections=naip&limit=100",
    "s2:processing_baseline >= 04.00 and eo:cloud_cover=12.5",
    "sen2naip-xr build: error: --out 'az://s2n/ds.zarr' needs a container",
    '{"kind": "cross-sensor", "reason": "NaN"}',
    "",
])
def test_redact_leaves_text_without_secrets_alone(text):
    assert redact(text) == text


def test_redact_takes_any_value():
    assert redact(ValueError(f"bad {SIGNED}")).endswith("sig=REDACTED")
    assert redact(None) == "None"
    assert redact(42) == "42"


# ------------------------------------------------------------------------------------------------
# redact: properties
_VALUE_CHARS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%+/=-_.~:", min_size=1,
                       max_size=40)
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
_URLISH = st.text(alphabet="abcdefghij/:.?&;=@ \"'{}[]()%,\\\n0123456789", max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_TEXT, _URLISH))
def test_redact_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=300, deadline=None)
@given(prefix=st.one_of(_TEXT, _URLISH), suffix=st.one_of(_TEXT, _URLISH), value=_VALUE_CHARS,
       key=st.sampled_from(["sig", "SIG", "Sig", "signature", "X-Amz-Signature", "AccountKey", "account_key",
                            "token", "sas_token", "password"]),
       sep=st.sampled_from(["?", "&", ";", " ", "\n", "(", ",", "'", '"', "\\n", "%3F", "%26", "%3B"]),
       eq=st.sampled_from(["=", "%3D"]))
def test_redact_never_leaves_a_secret_value(prefix, suffix, value, key, sep, eq):
    secret = "Zq9" + value.replace("%", "")
    text = f"{prefix}{sep}{key}{eq}{secret}{suffix}"
    out = redact(text)
    assert "Zq9" not in out
    assert REDACTED in out


@settings(max_examples=300, deadline=None)
@given(st.one_of(_TEXT, _URLISH))
def test_redact_leaves_no_sig_value(text):
    assert not LEAK.search(redact(text + "&sig=Zq9x"))
    assert not LEAK.search(redact(text))


def _could_hold_secret(text: str) -> bool:
    low = text.lower()
    names = [k.replace("_", "") for k in SECRET_PARAMS] + [k for k in SECRET_PARAMS]
    return (any(n in low.replace("_", "").replace("-", "") or n in low for n in names)
            or any(w in low for w in ("authoriz", "earer", "sharedkey", "sharedaccess", "subscription"))
            or ("@" in text and "://" in text) or re.search(r"[A-Za-z0-9+/]{86}==", text) is not None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.one_of(_TEXT, _URLISH, st.text(alphabet="abcdefghijklmnopqrstuvwxyz=&?;:/. ", max_size=60)))
def test_redact_leaves_text_without_secret_names_unchanged(text):
    assume(not _could_hold_secret(text))
    assert redact(text) == text


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT | _URLISH | st.builds(lambda k, v: f"http://h/a.tif?se=1&{k}={v}", st.sampled_from(["sig", "token"]), _VALUE_CHARS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT | st.sampled_from(["token", "sig", "account_key"]),
                                                                inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.booleans())
def test_redacting_json_text_keeps_it_json(doc, ascii_only):
    text = json.dumps(doc, ensure_ascii=ascii_only)
    out = redact(text)
    json.loads(out)  # still valid JSON
    assert not LEAK.search(out)


# ------------------------------------------------------------------------------------------------
# clean_url
@pytest.mark.parametrize(("href", "expected"), [
    (SIGNED, "https://naipeuwest.blob.core.windows.net/naip/v002/ca/m_1.tif"),
    ("https://x/a.tif?version=2&sig=1", "https://x/a.tif?version=2"),
    ("https://x/a.tif;sig=abc", "https://x/a.tif"),
    ("https://x/a.tif;sig=abc?version=2;token=t", "https://x/a.tif?version=2"),
    ("https://x/a.tif?se=1;sig=abc;b=%2F", "https://x/a.tif?b=%2F"),
    ("https://x/a;sig=1/b.tif?a=1", "https://x/a/b.tif?a=1"),
    ("https://x/a.tif?X-Amz-Signature=1&X-Amz-Credential=2&X-Amz-Date=3", "https://x/a.tif?X-Amz-Date=3"),
    ("http://user:pw@host/x?version=2&sig=1", "http://user@host/x?version=2"),
    ("https://x/a.tif?b=1&a=2", "https://x/a.tif?b=1&a=2"),  # order and text of other parameters kept
    ("https://x/a.tif?q=a%20b&sig=1", "https://x/a.tif?q=a%20b"),
    ("/data/a.tif", "/data/a.tif"),
    ("file:///data/a.tif", "file:///data/a.tif"),
])
def test_clean_url(href, expected):
    assert clean_url(href) == expected


def test_store_clean_href_delegates():
    from sen2naip_xr.store import clean_href

    assert clean_href("https://x/a.tif?se=1;sig=abc;v=2") == "https://x/a.tif?v=2"


# ------------------------------------------------------------------------------------------------
# json_safe / dumps_strict
def test_json_safe_examples():
    value = {
        "nan": float("nan"), "inf": float("inf"), "ninf": -math.inf, "f32": np.float32(0.5), "f32nan": np.float32("nan"),
        "i64": np.int64(3), "b": np.bool_(True), "arr": np.array([1.0, np.nan, np.inf]), "t": (1, 2), "s": {3, 1},
        "dt64": np.datetime64("2022-05-15T18:39:21.024000000"), "nat": np.datetime64("NaT"), "pdnat": pd.NaT,
        "ts": pd.Timestamp("2022-05-15T00:00:00Z"), "d": date(2020, 1, 2), "dtm": datetime(2020, 1, 2, tzinfo=UTC),
        "times": np.array(["2020-01-01", "NaT"], dtype="datetime64[D]"), "path": PurePosixPath("/a/b"),
        "str_nan": "NaN", "str_inf": "Infinity and -Infinity", "npstr": np.str_("NaN"),
        1: "int key", 2.5: "float key", None: "none key", "nested": [{"x": [float("nan")]}],
    }
    got = json_safe(value)
    assert got == {
        "nan": None, "inf": None, "ninf": None, "f32": 0.5, "f32nan": None, "i64": 3, "b": True, "arr": [1.0, None, None],
        "t": [1, 2], "s": [1, 3], "dt64": "2022-05-15T18:39:21.024000000", "nat": None, "pdnat": None,
        "ts": "2022-05-15T00:00:00+00:00", "d": "2020-01-02", "dtm": "2020-01-02T00:00:00+00:00",
        "times": ["2020-01-01", None], "path": "/a/b", "str_nan": "NaN", "str_inf": "Infinity and -Infinity",
        "npstr": "NaN", "1": "int key", "2.5": "float key", "null": "none key", "nested": [{"x": [None]}],
    }
    assert type(got["npstr"]) is str and type(got["f32"]) is float and type(got["b"]) is bool
    text = dumps_strict(value, sort_keys=True)
    assert "NaN" in text and '"str_nan": "NaN"' in text  # the string, not a number
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))


def test_dumps_strict_fixes_allow_nan():
    with pytest.raises(TypeError, match="allow_nan"):
        dumps_strict({}, allow_nan=True)
    assert dumps_strict([float("nan")], indent=None) == "[null]"


_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT
    | st.floats(width=32).map(np.float32) | st.integers(-(2**31), 2**31 - 1).map(np.int64),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(_TEXT, inner, max_size=4)
    | st.lists(st.floats(), max_size=4).map(np.array),
    max_leaves=16,
)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [str(value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


@settings(max_examples=300, deadline=None)
@given(_PLAIN)
def test_json_safe_is_strict_json_and_keeps_strings(value):
    out = json_safe(value)
    text = json.dumps(out, allow_nan=False)  # raises on NaN/inf
    assert json.loads(text) == out
    assert sorted(_strings(out)) == sorted(_strings(value))  # every string byte-identical
    assert dumps_strict(value) == text


# ------------------------------------------------------------------------------------------------
# logs
def test_log_records_are_redacted_in_process(caplog):
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("odc.loader._rio").error("Failed to load %s:%d due to rasterio error: '%s'", SIGNED, 1, "HTTP 404")
    logging.getLogger("rasterio._env").info("GDAL signalled an error: err_no=11, msg=%r", f"'/vsicurl/{SIGNED}'")
    logging.getLogger("azure.storage").warning("connecting with %s", EMULATOR_CS)
    try:
        raise OSError(f"cannot read {SIGNED}")
    except OSError:
        logging.getLogger("distributed.worker").exception("Compute Failed")
    text = caplog.text
    assert text.count("sig=REDACTED") >= 3 and "AccountKey=REDACTED" in text and "Compute Failed" in text
    assert not LEAK.search(text) and EMULATOR_KEY not in text
    assert all(not LEAK.search(r.getMessage()) for r in caplog.records)


def test_redacting_filter_on_a_handler():
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "read %s", (SIGNED,), None)
    handler.handle(record)
    assert records == [f"read {SIGNED.rsplit('sig=', 1)[0]}sig=REDACTED"]


def test_install_is_idempotent():
    install_log_redaction()
    factory = logging.getLogRecordFactory()
    install_log_redaction()
    assert logging.getLogRecordFactory() is factory


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_stderr_of_a_fresh_process_is_redacted():
    """Importing the package is enough: odc-stac's and GDAL's own messages (relayed by rasterio), the
    last-resort handler and a basicConfig handler all print redacted text."""
    import socket

    with socket.socket() as s:  # a closed loopback port: GDAL's HTTP read fails at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/blob/a.tif?st=1&se=2&sp=rl&sig=Zq9SECRET"
    r = _run_python(f"""
        import logging
        import sen2naip_xr  # installs the redaction
        logging.getLogger("odc.loader._rio").error("Failed to load %s:%d", {url!r}, 1)  # no handler: last resort
        logging.basicConfig(level=logging.DEBUG)
        logging.getLogger("azure.storage").warning("using %s", {EMULATOR_CS!r})
        import rasterio
        try:
            with rasterio.Env(CPL_DEBUG="ON", GDAL_HTTP_MAX_RETRY="0"):
                rasterio.open("/vsicurl/" + {url!r})
        except Exception as exc:
            logging.getLogger("sen2naip_xr").error("read failed: %s", exc)
    """)
    assert r.returncode == 0, r.stderr
    assert "Failed to load" in r.stderr and "read failed" in r.stderr and "AccountKey=REDACTED" in r.stderr
    assert "VSICURL: GetFileSize(http" in r.stderr  # GDAL's own debug line quoting the URL reached the log
    assert "Zq9SECRET" not in r.stderr and EMULATOR_KEY not in r.stderr
    assert r.stderr.count("sig=REDACTED") >= 3


# ------------------------------------------------------------------------------------------------
# the command line
def test_cli_argument_errors_hide_the_emulator_key():
    """argparse quotes the arguments it refuses: the connection string's key is redacted."""
    import os

    r = subprocess.run([sys.executable, "-m", "sen2naip_xr.cli", "inspect", "store.zarr", "--s2n-no-such-option",
                        EMULATOR_CS], capture_output=True, text=True, timeout=300, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2
    assert "unrecognized arguments" in r.stderr and "AccountKey=REDACTED" in r.stderr
    assert EMULATOR_KEY not in r.stderr + r.stdout


def _fake_command(monkeypatch, exc_factory):
    import types

    from sen2naip_xr import cli

    module = types.ModuleType("s2n_fake_command")

    def register(sub):
        def run(args):
            try:
                raise OSError(f"reading {SIGNED} failed")
            except OSError as first:
                raise exc_factory() from first

        sub.add_parser("boom").set_defaults(func=run)

    module.register = register
    monkeypatch.setitem(sys.modules, "s2n_fake_command", module)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("s2n_fake_command",))
    return cli


def test_cli_prints_unexpected_errors_redacted(monkeypatch, capsys):
    cli = _fake_command(monkeypatch, lambda: RuntimeError(f"cannot open the store with {EMULATOR_CS}"))
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: cannot open the store" in err and "OSError: reading" in err
    assert "AccountKey=REDACTED" in err and "sig=REDACTED" in err
    assert EMULATOR_KEY not in err and not LEAK.search(err)


def test_cli_prints_its_own_errors_redacted(monkeypatch, capsys):
    from sen2naip_xr.errors import StoreError

    cli = _fake_command(monkeypatch, lambda: StoreError(f"az://s2n/ds.zarr: refused with {EMULATOR_CS}"))
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sen2naip-xr boom: error: az://s2n/ds.zarr") and "AccountKey=REDACTED" in err
    assert EMULATOR_KEY not in err and "Traceback" not in err


def test_redact_tree_redacts_secret_entries_and_strings():
    from sen2naip_xr._safe import redact_tree

    config = {"storage_options": {"account_name": "devstoreaccount1", "account_key": EMULATOR_KEY,
                                  "connection_string": EMULATOR_CS},
              "catalog": "https://stac.example/api?token=abc", "sr": "kept", "seed": 0, "token": None,
              "hrefs": (SIGNED,)}
    out = redact_tree(config)
    assert out["storage_options"]["account_key"] == REDACTED and out["storage_options"]["account_name"] == "devstoreaccount1"
    assert out["storage_options"]["connection_string"] == REDACTED
    assert out["catalog"].endswith("token=REDACTED") and out["sr"] == "kept" and out["seed"] == 0 and out["token"] is None
    assert out["hrefs"][0].endswith("sig=REDACTED")
    assert EMULATOR_KEY not in json.dumps(out)


def test_records_without_secrets_keep_their_args():
    install_log_redaction()
    record = logging.getLogger("uvicorn.access").makeRecord("uvicorn.access", logging.INFO, __file__, 1,
                                                            '%s - "%s %s HTTP/%s" %d',
                                                            ("127.0.0.1:5", "GET", "/a", "1.1", 200), None)
    assert record.args == ("127.0.0.1:5", "GET", "/a", "1.1", 200)  # structured formatters read them
    signed = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "GET %s", (SIGNED,), None)
    assert signed.args == () and signed.msg.endswith("sig=REDACTED")
