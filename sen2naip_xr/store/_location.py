"""Where a store lives: a URL parsed once, turned into an icechunk ``Storage`` or an obstore store.

Accepted locations::

    /data/ds.zarr  or  file:///data/ds.zarr     a local (or shared, mounted) folder
    az://container/prefix  abfs://container/prefix   Azure Blob storage
    s3://bucket/prefix                             Amazon S3 (or any S3 API)
    gs://bucket/prefix                             Google Cloud Storage
    memory://name                                  in this process only (tests)

Credentials never travel in the URL: they come from ``storage_options`` (the CLI's
``--storage-option KEY=VALUE``) or from the storage client's standard environment variables:

- Azure: ``AZURE_STORAGE_ACCOUNT_NAME`` + ``AZURE_STORAGE_ACCOUNT_KEY`` (or ``AZURE_STORAGE_SAS_TOKEN``), or
  ``AZURE_STORAGE_CONNECTION_STRING``; ``AZURE_STORAGE_USE_EMULATOR=true`` (+ ``AZURITE_BLOB_STORAGE_URL``)
  for the Azurite emulator; otherwise the Azure SDK's own chain (managed identity, ``az login``).
- S3: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_REGION``/``AWS_ENDPOINT_URL``, profiles, roles.
- GCS: ``GOOGLE_APPLICATION_CREDENTIALS`` or the metadata server.

A :class:`Location` is small and picklable; its ``url`` holds no secret and is what the store records.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sen2naip_xr._safe import redact
from sen2naip_xr.errors import StoreError

__all__ = ["Location", "parse_location", "parse_storage_options", "SCHEMES", "EMULATOR_ACCOUNT", "EMULATOR_KEY"]

SCHEMES: tuple[str, ...] = ("file", "az", "abfs", "abfss", "s3", "gs", "gcs", "memory")
#: Azurite's public development account and its documented key (not a secret: the emulator only).
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_AZ_KEYS = {"account_name", "account", "account_key", "access_key", "sas_token", "connection_string", "endpoint",
            "allow_http", "use_emulator", "bearer_token"}
_S3_KEYS = {"region", "endpoint_url", "allow_http", "access_key_id", "secret_access_key", "session_token",
            "anonymous", "force_path_style", "requester_pays"}
_GS_KEYS = {"service_account_file", "service_account_key", "application_credentials", "bearer_token", "anonymous"}
_MEMORY: dict[str, Any] = {}
_MEMORY_LOCK = threading.Lock()


_LOGS_SET: list[bool] = []


def _quiet_logs(icechunk: Any) -> None:
    """icechunk's own warnings (e.g. about local folders, where commits take a file lock here) only when
    asked for with ``ICECHUNK_LOG``."""
    if not _LOGS_SET and "ICECHUNK_LOG" not in os.environ:
        icechunk.set_logs_filter("error")
    _LOGS_SET.append(True)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def parse_storage_options(pairs: list[str] | None) -> dict[str, str]:
    """``["account_name=x", "allow_http=true"]`` (the CLI's ``--storage-option``) as a dict."""
    out: dict[str, str] = {}
    for p in pairs or []:
        key, sep, value = str(p).partition("=")
        if not sep or not key.strip():
            raise StoreError(f"--storage-option {redact(p)!r} is not KEY=VALUE; write e.g. "
                             "--storage-option account_name=myaccount")
        out[key.strip()] = value
    return out


@dataclass(frozen=True)
class Location:
    """A parsed store location (see the module docstring)."""

    url: str
    """The location as a URL without credentials: what the store and its provenance record."""
    scheme: str
    """``file``, ``az``, ``s3``, ``gs`` or ``memory``."""
    bucket: str = ""
    """Container or bucket (``memory``: the name); empty for ``file``."""
    prefix: str = ""
    """Path inside the bucket; for ``file`` the absolute folder."""
    options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Storage options (may hold credentials: never recorded, never printed)."""

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def path(self) -> Path:
        """The folder of a local store."""
        if not self.is_local:
            raise StoreError(f"store {self.url!r} is not a local folder; read it through the store's methods")
        return Path(self.prefix)

    def __str__(self) -> str:
        return self.url

    # ------------------------------------------------------------------------------------------------
    def icechunk_storage(self) -> Any:
        """The icechunk ``Storage`` of this location."""
        import icechunk

        _quiet_logs(icechunk)
        if self.scheme == "file":
            return icechunk.local_filesystem_storage(self.prefix)
        if self.scheme == "memory":
            with _MEMORY_LOCK:  # one in-memory repository per name, for the life of the process
                if self.bucket not in _MEMORY:
                    _MEMORY[self.bucket] = icechunk.in_memory_storage()
                return _MEMORY[self.bucket]
        if self.scheme == "az":
            az = self._azure()
            config = {k: v for k, v in (("endpoint", az.get("endpoint")),
                                        ("allow_http", "true" if az.get("allow_http") else None)) if v}
            kw: dict[str, Any] = {}
            if az.get("account_key"):
                kw["access_key"] = az["account_key"]
            elif az.get("sas_token"):
                kw["sas_token"] = az["sas_token"]
            elif az.get("bearer_token"):
                kw["bearer_token"] = az["bearer_token"]
            else:
                kw["from_env"] = True
            return icechunk.azure_storage(account=az["account_name"], container=self.bucket, prefix=self.prefix,
                                          config=config or None, **kw)
        if self.scheme == "s3":
            o = dict(self.options)
            kw = {k: o[k] for k in ("region", "endpoint_url", "access_key_id", "secret_access_key", "session_token")
                  if o.get(k)}
            for k in ("allow_http", "anonymous", "force_path_style", "requester_pays"):
                if k in o:
                    kw[k] = _truthy(o[k])
            if not kw.get("access_key_id") and not kw.get("anonymous"):
                kw["from_env"] = True
            return icechunk.s3_storage(bucket=self.bucket, prefix=self.prefix, **kw)
        if self.scheme == "gs":
            o = dict(self.options)
            kw = {k: o[k] for k in ("service_account_file", "service_account_key", "application_credentials",
                                    "bearer_token") if o.get(k)}
            if "anonymous" in o:
                kw["anonymous"] = _truthy(o["anonymous"])
            if not kw:
                kw["from_env"] = True
            return icechunk.gcs_storage(bucket=self.bucket, prefix=self.prefix, **kw)
        raise StoreError(f"store {self.url!r}: no storage for scheme {self.scheme!r}")  # pragma: no cover

    def obstore(self, sub: str = "") -> Any:
        """An obstore store rooted at this location (``/sub`` below it): raw objects (export, checks)."""
        from obstore.store import AzureStore, GCSStore, LocalStore, MemoryStore, S3Store

        prefix = "/".join(p for p in (self.prefix.strip("/"), sub.strip("/")) if p)
        if self.scheme == "file":
            folder = Path(self.prefix) / sub if sub else Path(self.prefix)
            folder.mkdir(parents=True, exist_ok=True)
            return LocalStore(prefix=folder)
        if self.scheme == "memory":
            return MemoryStore()
        if self.scheme == "az":
            az = self._azure()
            kw = {k: az[k] for k in ("account_key", "sas_token", "bearer_token", "endpoint") if az.get(k)}
            if "sas_token" in kw:
                kw["sas_key"] = kw.pop("sas_token")
            if "bearer_token" in kw:
                kw["token"] = kw.pop("bearer_token")
            opts = {"allow_http": True} if az.get("allow_http") else None
            return AzureStore(self.bucket, prefix=prefix or None, account_name=az["account_name"], client_options=opts,
                              **kw)
        o = dict(self.options)
        if self.scheme == "s3":
            kw = {k: o[k] for k in ("region", "endpoint_url", "access_key_id", "secret_access_key", "session_token")
                  if o.get(k)}
            if "endpoint_url" in kw:
                kw["endpoint"] = kw.pop("endpoint_url")
            if kw.get("access_key_id") is None and _truthy(o.get("anonymous", "")):
                kw["skip_signature"] = True
            opts = {"allow_http": True} if _truthy(o.get("allow_http", "")) else None
            return S3Store(self.bucket, prefix=prefix or None, client_options=opts, **kw)
        kw = {k: o[k] for k in ("service_account_key", "application_credentials") if o.get(k)}
        if o.get("service_account_file"):
            kw["service_account_path"] = o["service_account_file"]
        return GCSStore(self.bucket, prefix=prefix or None, **kw)

    def _azure(self) -> dict[str, Any]:
        """Account, credential and endpoint from the options, then the standard environment variables."""
        o = {k.lower(): v for k, v in self.options.items()}
        env = os.environ
        out: dict[str, Any] = {
            "account_name": o.get("account_name") or o.get("account"),
            "account_key": o.get("account_key") or o.get("access_key"),
            "sas_token": o.get("sas_token"),
            "bearer_token": o.get("bearer_token"),
            "endpoint": o.get("endpoint"),
            "allow_http": _truthy(o["allow_http"]) if "allow_http" in o else None,
        }
        conn = o.get("connection_string") or (None if out["account_name"] else env.get("AZURE_STORAGE_CONNECTION_STRING"))
        if conn:
            parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
            out["account_name"] = out["account_name"] or parts.get("AccountName")
            out["account_key"] = out["account_key"] or parts.get("AccountKey")
            out["sas_token"] = out["sas_token"] or parts.get("SharedAccessSignature")
            out["endpoint"] = out["endpoint"] or parts.get("BlobEndpoint")
            if parts.get("UseDevelopmentStorage", "").lower() == "true":
                o["use_emulator"] = "true"
        emulator = _truthy(o.get("use_emulator", env.get("AZURE_STORAGE_USE_EMULATOR", "")))
        if emulator:
            out["account_name"] = out["account_name"] or EMULATOR_ACCOUNT
            if out["account_name"] == EMULATOR_ACCOUNT and not (out["account_key"] or out["sas_token"]):
                out["account_key"] = EMULATOR_KEY
            base = env.get("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10000").rstrip("/")
            out["endpoint"] = out["endpoint"] or f"{base}/{out['account_name']}"
        out["account_name"] = out["account_name"] or env.get("AZURE_STORAGE_ACCOUNT_NAME")
        if not (out["account_key"] or out["sas_token"] or out["bearer_token"]):
            out["account_key"] = env.get("AZURE_STORAGE_ACCOUNT_KEY") or None
            out["sas_token"] = env.get("AZURE_STORAGE_SAS_TOKEN") or None
        if not out["account_name"]:
            raise StoreError(f"store {self.url!r}: no Azure storage account; set AZURE_STORAGE_ACCOUNT_NAME (+ "
                             "AZURE_STORAGE_ACCOUNT_KEY) or AZURE_STORAGE_CONNECTION_STRING, or pass "
                             "--storage-option account_name=NAME (storage_options={'account_name': ...})")
        if out["allow_http"] is None:
            out["allow_http"] = bool(out["endpoint"] and str(out["endpoint"]).startswith("http://"))
        return out


def parse_location(location: str | os.PathLike | Location,
                   storage_options: Mapping[str, Any] | None = None) -> Location:
    """A :class:`Location` from a path or URL (``storage_options`` are merged in).

    Raises
    ------
    StoreError
        An unknown scheme, a URL without a bucket/container, credentials or a query string in the URL, or
        a storage option that the scheme does not know.
    """
    if isinstance(location, Location):
        if not storage_options:
            return location
        return Location(location.url, location.scheme, location.bucket, location.prefix,
                        {**location.options, **dict(storage_options)})
    text = os.fspath(location) if isinstance(location, os.PathLike) else str(location)
    opts = dict(storage_options or {})
    if "://" not in text:
        if not text.strip():
            raise StoreError("store location is empty; pass a folder or a URL (az://container/prefix, s3://, gs://)")
        path = Path(text).expanduser().absolute()  # workers may run in another working directory
        return Location(path.as_uri() if path.is_absolute() else str(path), "file", "", str(path), opts)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StoreError(f"store location {redact(text)!r} has the unknown scheme {scheme!r}; use a local folder, "
                         "file://, az:// (or abfs://), s3://, gs:// or memory://")
    if parts.query or parts.password or (parts.username and scheme not in ("abfs", "abfss")):
        raise StoreError(f"store location {redact(text)!r} carries a query string or credentials; pass credentials "
                         "with --storage-option KEY=VALUE (storage_options=) or the storage client's environment "
                         "variables, never in the URL")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"store location {text!r}: file:// URLs name a local path (file:///data/ds.zarr)")
        return parse_location(parts.path, opts)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if scheme in ("abfs", "abfss"):
        scheme = "az"
        if "@" in bucket:  # abfs://container@account.dfs.core.windows.net/prefix
            bucket, _, host = bucket.partition("@")
            opts.setdefault("account_name", host.split(".")[0])
    scheme = "gs" if scheme == "gcs" else scheme
    if not bucket:
        raise StoreError(f"store location {text!r} names no {'container' if scheme == 'az' else 'bucket'}; write "
                         f"{scheme}://NAME/prefix")
    known = {"az": _AZ_KEYS, "s3": _S3_KEYS, "gs": _GS_KEYS, "memory": set()}[scheme]
    unknown = sorted(set(k.lower() for k in opts) - known)
    if unknown:
        raise StoreError(f"storage option(s) {unknown} are not known for {scheme}:// stores; use some of "
                         f"{sorted(known) or 'none'}")
    url = f"{scheme}://{bucket}/{prefix}".rstrip("/")
    return Location(url, scheme, bucket, prefix, opts)
