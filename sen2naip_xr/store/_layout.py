"""The dataset's Zarr v3 layout in an icechunk repository: transactional, versioned, checksummed.

::

    <store>/                          root group: provenance, config, demo_truth (attrs)
      cross-sensor/                   group: counts, config of the last finished run (attrs)
        ROI_00001/                    group: the paper's Table 1 metadata (attrs)
          lr/   lr (band, y, x) + spatial_ref      Sentinel-2, 10 m
          hr/   hr (band, y, x) + spatial_ref      NAIP_h, 2.5 m
        _failures/ROI_00003/          group whose attrs are one failure record (roi_id, stage, reason)
        _index/<commit batch>/        group whose attrs list the ROIs that batch wrote or failed (the ROI index)
      synthetic/
        ROI_00001/{early,late}/       hr + spatial_ref, hist (harmonizer, band, bin), optional lr
        _failures/..., _index/..., _embeddings/

Every location (a local folder, ``az://``, ``s3://``, ``gs://``, ``memory://``) is an icechunk repository
(:mod:`sen2naip_xr.store._location`), one code path. Writers are :class:`RoiSink` objects: forked
icechunk sessions that pickle into Dask tasks; the driver's :class:`StoreWriter` merges them and commits
in batches, each batch with its slice of the ROI index, so a reader or a rerun sees whole ROIs or none.
Every array carries a ``crc32c`` checksum codec, so a damaged chunk is detected (``inspect --verify``).
Each ROI's index entry holds its ``roi_id`` and the hash of the run's config: a rerun skips only
matching ROIs and refuses anything else with the difference spelled out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd
import xarray as xr

from sen2naip_xr._const import FAILURE_COLUMNS
from sen2naip_xr._safe import dumps_strict, json_safe, redact
from sen2naip_xr.errors import StoreError
from sen2naip_xr.store._location import Location, parse_location

__all__ = ["DatasetStore", "StoreWriter", "RoiSink", "KINDS", "roi_name", "COMPLETE_ATTR", "FAILURE_COLUMNS",
           "config_hash"]

KINDS: tuple[str, ...] = ("cross-sensor", "synthetic")
#: Attribute of an ROI group that says it was written whole.
COMPLETE_ATTR = "s2n:complete"
_FAILURES = "_failures"
_INDEX = "_index"
_AUX = ("_failures", "_index", "_embeddings")
_BRANCH = "main"
#: How long a builder whose repository create failed waits for a concurrent builder's create to finish.
CREATE_RACE_S = 10.0
#: The process that started icechunk's runtime (its threads do not survive ``fork``: a forked child that
#: uses it would hang, so it gets a clear error instead).
_RUNTIME_PID: list[int] = []


def _check_not_forked(url: str) -> None:
    if _RUNTIME_PID and _RUNTIME_PID[0] != os.getpid():
        raise StoreError(f"store {url!r} is read in a process forked from one that already used the store: "
                         "icechunk's I/O threads do not survive fork. Start such workers with 'spawn' (torch: "
                         "DataLoader(..., multiprocessing_context='spawn'), or SRDataset.loader(...)), as Dask "
                         "workers are")
    if not _RUNTIME_PID:
        _RUNTIME_PID.append(os.getpid())
        import atexit

        import zarr.core.sync  # noqa: F401 - zarr's own exit hook first, so this one runs before it (LIFO)

        atexit.register(settle_io_threads)


def settle_io_threads(timeout: float = 5.0) -> bool:
    """Wait, with the GIL released, until no icechunk I/O thread is still delivering a result to asyncio.

    icechunk's tokio threads hand each finished read to zarr's event loop with ``call_soon_threadsafe``,
    whose wake-up ``send`` releases the GIL. The loop may already have run the callback, and the program
    may have finished, before that thread takes the GIL back; if the interpreter is finalizing by then,
    CPython < 3.14 ends the thread with ``pthread_exit``, whose unwinding through Rust frames aborts the
    whole process (SIGABRT after a successful run; PyO3/pyo3#4874, PyO3/pyo3-async-runtimes#40). Run at
    exit (registered when a process first opens a store), this lets such threads finish first. Returns
    whether they did within ``timeout`` seconds (exit goes on either way).
    """
    import asyncio.base_events
    import sys
    import threading

    code = asyncio.base_events.BaseEventLoop.call_soon_threadsafe.__code__
    me = threading.get_ident()
    deadline = time.monotonic() + timeout
    while True:
        busy = False
        for tid, frame in sys._current_frames().items():
            while frame is not None and tid != me:
                if frame.f_code is code:
                    busy = True
                    break
                frame = frame.f_back
        if not busy:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def roi_name(index: int) -> str:
    """``ROI_00001`` for the first ROI (1-based, as the published dataset)."""
    return f"ROI_{int(index) + 1:05d}"


def config_hash(config: Mapping[str, Any]) -> str:
    """A short hash of a run's config (what decides an ROI's bytes): part of every ROI's identity."""
    return hashlib.sha256(dumps_strict(dict(config), sort_keys=True).encode()).hexdigest()[:16]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise StoreError(f"kind={kind!r} is not a part of the dataset; use one of {KINDS}")
    return kind


def _zarr_ready(ds: xr.Dataset) -> xr.Dataset:
    """String coordinates as variable-length strings (Zarr v3 has no spec for fixed-width unicode)."""
    return ds.assign_coords({k: v.astype(object) for k, v in ds.coords.items() if v.dtype.kind == "U"})


def _encoding(ds: xr.Dataset) -> dict[str, dict]:
    """One chunk per array, zstd + a ``crc32c`` checksum on every array (coordinates too)."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    enc = {}
    for v in ds.variables:
        e: dict[str, Any] = {"compressors": [ZstdCodec(level=0), Crc32cCodec()]}
        if ds[v].ndim:
            e["chunks"] = ds[v].shape
        enc[v] = e
    return enc


def damage_message(url: str, what: str, exc: BaseException) -> str:
    return (f"{what} of store {url!r} cannot be read ({type(exc).__name__}: {redact(str(exc))[:300]}); run "
            f"`sen2naip-xr inspect {url} --verify` to list the damaged ROIs, then rerun the same build with "
            "--repair to rewrite them")


# ---------------------------------------------------------------------------------------------------
class RoiSink:
    """Where a task writes its ROIs: a forked icechunk session (pickles into a Dask task) or, for an
    in-process run on a ``memory://`` store, the driver's session itself. It also collects the ROIs'
    index entries, which the driver commits with them."""

    def __init__(self, session: Any, url: str, chash: str, *, direct: bool = False, writer: str = "") -> None:
        self.session = session
        self.url = url
        self.config_hash = chash
        self.direct = direct
        self.writer = writer  # the id of the StoreWriter that made it: only that writer merges it
        self.entries: dict[str, dict[str, dict]] = {}

    def __getstate__(self) -> dict:
        if self.direct:
            raise StoreError(f"store {self.url!r} is a memory:// store: it lives in one process, so a distributed "
                             "run cannot write to it; use scheduler='sync' (--scheduler sync) or a folder / object "
                             "store URL")
        return self.__dict__

    def _root(self):
        import zarr

        return zarr.open_group(self.session.store, mode="r+", zarr_format=3)

    def write_roi(self, kind: str, name: str, groups: Mapping[str, xr.Dataset], attrs: Mapping[str, Any]) -> None:
        """Write one ROI: its ``groups`` (e.g. ``lr``/``hr``) and the ROI group's ``attrs``."""
        import zarr

        _check_kind(kind)
        attrs = json_safe({**dict(attrs), COMPLETE_ATTR: True})
        try:
            zarr.open_group(self.session.store, path=f"{kind}/{name}", mode="w", zarr_format=3,
                            attributes=attrs)
            for sub, ds in groups.items():
                ds = _zarr_ready(ds)
                for v in ds.data_vars:  # CF grid_mapping as an attribute: explicit encodings below would drop it
                    gm = ds[v].encoding.pop("grid_mapping", None)
                    if gm:
                        ds[v].attrs["grid_mapping"] = gm
                    if ds[v].attrs.get("grid_mapping") not in (None, *ds.variables):  # dangling: readers warn
                        del ds[v].attrs["grid_mapping"]
                ds.to_zarr(self.session.store, group=f"{kind}/{name}/{sub}", mode="w", zarr_format=3,
                           consolidated=False, encoding=_encoding(ds))
        except (OSError, ValueError, RuntimeError) as exc:
            raise StoreError(f"writing {kind}/{name} to store {self.url!r} failed ({redact(exc)}); free disk "
                             "space or check the location and its credentials, then rerun: finished ROIs are kept") from exc
        self.entries.setdefault(kind, {})[name] = {
            "roi_id": str(attrs.get("roi_id")), "status": "written", "config": self.config_hash,
            "split": attrs.get("split"), "QA_1": attrs.get("QA_1"), "QA_2": attrs.get("QA_2"),
            "harmonizers": attrs.get("harmonizers"), "subgroups": sorted(groups)}

    def record_failure(self, kind: str, name: str, roi_id: str, stage: str, reason: str) -> None:
        """Record that ROI ``name`` was not written, at which ``stage`` and why (the reason redacted)."""
        import zarr

        rec = {"roi": name, "roi_id": str(roi_id), "stage": str(stage), "reason": redact(reason)}
        zarr.open_group(self.session.store, path=f"{_check_kind(kind)}/{_FAILURES}/{name}", mode="w",
                        zarr_format=3, attributes=json_safe(rec))
        self.entries.setdefault(kind, {})[name] = {"roi_id": rec["roi_id"], "status": "failed",
                                                   "config": self.config_hash, "stage": rec["stage"],
                                                   "reason": rec["reason"]}


# ---------------------------------------------------------------------------------------------------
class DatasetStore:
    """A SEN2NAIP dataset store at a path or URL (see :mod:`sen2naip_xr.store._location`).

    ``DatasetStore(url)`` opens it (nothing is written until :meth:`init`); ``tag=`` or ``snapshot=``
    read an earlier version (read-only).
    """

    def __init__(self, location: str | os.PathLike | Location, *, storage_options: Mapping[str, Any] | None = None,
                 tag: str | None = None, snapshot: str | None = None) -> None:
        self.location = parse_location(location, storage_options)
        self.tag, self.snapshot = tag, snapshot
        self._repo: Any = None
        self._session: Any = None

    # ----------------------------------------------------------------------------------- basics
    @property
    def url(self) -> str:
        """The location without credentials."""
        return self.location.url

    @property
    def path(self) -> Any:
        """The folder of a local store (a ``Path``); the URL of any other."""
        return self.location.path if self.location.is_local else self.url

    def __repr__(self) -> str:
        return f"DatasetStore({self.url!r})"

    def __getstate__(self) -> dict:
        return {"location": self.location, "tag": self.tag, "snapshot": self.snapshot, "_repo": None, "_session": None}

    def exists(self) -> bool:
        """Whether an icechunk repository is at the location."""
        import icechunk

        _check_not_forked(self.url)
        if self.location.is_local and not (self.location.path / "refs").is_dir():
            return False
        try:
            return bool(icechunk.Repository.exists(self.location.icechunk_storage()))
        except Exception as exc:  # noqa: BLE001 - storage errors are reported with their cause
            raise StoreError(f"store {self.url!r} cannot be reached ({redact(exc)[:300]}); check the URL and the "
                             "credentials (--storage-option / the storage client's environment variables)") from exc

    @property
    def repo(self) -> Any:
        if self._repo is None:
            import icechunk

            if not self.exists():
                if self.location.is_local and self.location.path.is_dir() and any(self.location.path.iterdir()):
                    if (self.location.path / "zarr.json").exists():
                        raise StoreError(f"store={self.url!r} is a plain Zarr folder (an older sen2naip_xr store, or "
                                         "an export?), not an icechunk dataset store; pass a new folder or rebuild")
                    raise StoreError(f"store={self.url!r} is a non-empty folder that is not a sen2naip_xr store; "
                                     "pass a new or empty folder")
                raise StoreError(f"store={self.url!r} is not a sen2naip_xr store (no repository there); pass the "
                                 "location that `sen2naip-xr build` wrote")
            try:
                self._repo = icechunk.Repository.open(self.location.icechunk_storage())
            except Exception as exc:  # noqa: BLE001
                raise StoreError(damage_message(self.url, "the repository", exc)) from exc
        return self._repo

    def session(self) -> Any:
        """A read-only icechunk session of the version this object reads (cached; :meth:`refresh` drops it)."""
        if self._session is None:
            try:
                if self.snapshot:
                    self._session = self.repo.readonly_session(snapshot_id=self.snapshot)
                elif self.tag:
                    self._session = self.repo.readonly_session(tag=self.tag)
                else:
                    self._session = self.repo.readonly_session(branch=_BRANCH)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001
                if not (self.tag or self.snapshot):
                    raise StoreError(damage_message(self.url, "the latest version", exc) + "; an earlier version "
                                     "stays readable with snapshot= / --snapshot (see --history)") from exc
                what = f"tag={self.tag!r}" if self.tag else f"snapshot={self.snapshot!r}"
                raise StoreError(f"store {self.url!r} has no version {what} ({redact(exc)[:200]}); list them with "
                                 f"`sen2naip-xr inspect {self.url} --history`") from exc
        return self._session

    def refresh(self) -> DatasetStore:
        """Read the latest version from now on."""
        self._session = None
        return self

    def group(self, path: str = "") -> Any:
        """A read-only zarr group of the store."""
        import zarr

        try:
            return zarr.open_group(self.session().store, path=path, mode="r", zarr_format=3)
        except StoreError:
            raise
        except FileNotFoundError as exc:
            if not path:  # every store has a root group: its metadata is damaged
                raise StoreError(damage_message(self.url, "the root group", exc)) from exc
            raise StoreError(f"store {self.url!r} has no group {path!r}; is it a sen2naip_xr store "
                             "(built by `sen2naip-xr build`)?") from None
        except Exception as exc:  # noqa: BLE001
            raise StoreError(damage_message(self.url, f"node {path or '/'!r}", exc)) from exc

    def has_group(self, path: str) -> bool:
        try:
            self.group(path)
            return True
        except StoreError:
            return False

    # ----------------------------------------------------------------------------------- reading
    def attrs(self, kind: str | None = None) -> dict[str, Any]:
        """Attributes of the root group, of a part (``kind``) or of any group path (``cross-sensor/ROI_00001``)."""
        return dict(self.group(kind or "").attrs)

    def index(self, kind: str) -> dict[str, dict]:
        """The ROI index of ``kind``: ``{name: {roi_id, status, config, split, QA_1, QA_2, stage, reason}}``.

        Read from the small ``_index`` nodes (one per commit batch), not by listing ROI groups.
        """
        _check_kind(kind)
        try:
            idx = self.group(f"{kind}/{_INDEX}")
        except StoreError:
            return {}
        out: dict[str, dict] = {}
        try:
            for key in sorted(idx.group_keys()):
                for name, entry in dict(idx[key].attrs).get("rois", {}).items():
                    if entry.get("status") == "removed":
                        out.pop(name, None)
                    else:
                        out[name] = entry
        except Exception as exc:  # noqa: BLE001
            raise StoreError(damage_message(self.url, f"the ROI index of {kind}", exc)) from exc
        return dict(sorted(out.items()))

    def rois(self, kind: str) -> list[str]:
        """Names of the finished ROIs of ``kind``, sorted."""
        return [n for n, e in self.index(kind).items() if e.get("status") == "written"]

    def done(self, kind: str) -> set[str]:
        """Names of ROIs that are written or recorded as failed."""
        return set(self.index(kind))

    def is_complete(self, kind: str, name: str) -> bool:
        return self.index(kind).get(name, {}).get("status") == "written"

    def is_failed(self, kind: str, name: str) -> bool:
        return self.index(kind).get(name, {}).get("status") == "failed"

    def failures(self, kind: str | None = None) -> pd.DataFrame:
        """The failures table: ``kind``, ``roi``, ``roi_id``, ``stage``, ``reason`` (sorted by ROI)."""
        rows = []
        for k in (kind,) if kind else KINDS:
            for name, e in self.index(k).items():
                if e.get("status") == "failed":
                    rows.append({"kind": k, "roi": name, "roi_id": e.get("roi_id"), "stage": e.get("stage"),
                                 "reason": e.get("reason")})
        return pd.DataFrame(rows, columns=["kind", "roi", *FAILURE_COLUMNS])

    def roi_groups(self, kind: str, name: str) -> list[str]:
        """The sub-groups of an ROI (``lr``/``hr`` or ``early``/``late``)."""
        entry = self.index(kind).get(name, {})
        if entry.get("subgroups"):
            return list(entry["subgroups"])
        return sorted(self.group(f"{_check_kind(kind)}/{name}").group_keys())

    def open_dataset(self, path: str, *, chunks: Any = None) -> xr.Dataset:
        """The Dataset of one group (e.g. ``cross-sensor/ROI_00001/lr``), read through icechunk."""
        try:
            return xr.open_zarr(self.session().store, group=path, consolidated=False, decode_coords="all",
                                chunks=chunks, zarr_format=3)
        except (StoreError, Warning):
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged node: say which ROI and the fix
            raise StoreError(damage_message(self.url, f"node {path!r}", exc)) from exc

    def load_dataset(self, path: str) -> xr.Dataset:
        """:meth:`open_dataset` with every array read now (a damaged chunk raises a :class:`StoreError`)."""
        ds = self.open_dataset(path)
        try:
            return ds.load()
        except Exception as exc:  # noqa: BLE001
            raise StoreError(damage_message(self.url, f"node {path!r}", exc)) from exc

    def read_aux(self, kind: str, name: str) -> xr.Dataset | None:
        """An auxiliary node of a part (``_embeddings``), loaded, or None when absent."""
        if not self.has_group(f"{_check_kind(kind)}/{name}"):
            return None
        return self.load_dataset(f"{kind}/{name}")

    def history(self) -> list[dict[str, Any]]:
        """Commits of the main branch, newest first: id, time, message, metadata (the run's config)."""
        tags: dict[str, list[str]] = {}
        for t in sorted(self.repo.list_tags()):
            tags.setdefault(self.repo.lookup_tag(t), []).append(t)
        return [{"snapshot": a.id, "written_at": a.written_at.isoformat(), "message": a.message,
                 "metadata": dict(a.metadata or {}), "tags": tags.get(a.id, [])}
                for a in self.repo.ancestry(branch=_BRANCH)]

    def create_tag(self, name: str, snapshot: str | None = None) -> str:
        """Tag the latest (or ``snapshot``) version as ``name``; returns the snapshot id."""
        import icechunk

        sid = snapshot or self.repo.lookup_branch(_BRANCH)
        try:
            self.repo.create_tag(name, sid)
        except icechunk.IcechunkError as exc:
            raise StoreError(f"--tag {name!r} cannot be created on {self.url!r} ({redact(exc)[:200]}); tags are "
                             "immutable: pick a new name") from exc
        return sid

    def digest(self) -> str:
        """sha256 over every node's metadata and bytes (ROI index and commit history excluded): equal
        digests, equal dataset content."""
        h = hashlib.sha256()

        def walk(group, path: str) -> None:
            h.update(f"G {path}\0".encode() + dumps_strict(dict(group.attrs), sort_keys=True).encode())
            for key in sorted(group.array_keys()):
                arr = group[key]
                meta = arr.metadata.to_dict()
                meta.pop("attributes", None)
                h.update(f"A {path}/{key}\0".encode() + json.dumps(meta, sort_keys=True, default=str).encode()
                         + dumps_strict(dict(arr.attrs), sort_keys=True).encode())
                data = arr[...]
                h.update(data.tobytes() if data.dtype != object else "\0".join(map(str, data.ravel())).encode())
            for key in sorted(group.group_keys()):
                if key != _INDEX:
                    walk(group[key], f"{path}/{key}")

        walk(self.group(), "")
        return h.hexdigest()

    # ----------------------------------------------------------------------------------- writing
    def init(self, attrs: Mapping[str, Any] | None = None, *, kinds: tuple[str, ...] = KINDS,
             protect: tuple[str, ...] = ("demo_truth",)) -> None:
        """Create the repository, the root and part groups (idempotent); merge ``attrs`` into the root's.

        A root attribute named in ``protect`` (``demo_truth``) that the store holds with another value is
        never replaced: a :class:`StoreError` says so.
        """
        import icechunk
        import zarr

        if self.tag or self.snapshot:
            raise StoreError(f"store {self.url!r} was opened at tag/snapshot (read-only); open it without them to write")
        if self.location.is_local:
            p = self.location.path
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"output={self.url!r} cannot be created ({exc.strerror}); pass a folder you can "
                                 "write to") from exc
            if not self.exists() and any(x for x in p.iterdir() if not x.name.startswith(".s2n-")):
                self.repo  # noqa: B018 - raises the right StoreError for a foreign folder
        if not self.exists():
            try:
                icechunk.Repository.create(self.location.icechunk_storage())
            except icechunk.IcechunkError as exc:
                if not self._created_meanwhile():  # not a race with another builder: a real failure
                    raise StoreError(f"store {self.url!r} cannot be created ({redact(exc)[:300]}): its location holds "
                                     "objects but no repository. Pass an empty folder or prefix; if another build "
                                     "was creating it at the same time and failed, rerun") from exc
            except Exception as exc:  # noqa: BLE001
                if not self.exists():
                    raise StoreError(f"store {self.url!r} cannot be created ({redact(exc)[:300]}); check the location "
                                     "and the credentials") from exc
        self._repo = None
        want = json_safe(dict(attrs or {}))
        for _ in range(50):
            session = self.repo.writable_session(_BRANCH)
            store = session.store
            try:
                root = zarr.open_group(store, mode="r+", zarr_format=3)
                old = dict(root.attrs)
            except FileNotFoundError:
                root, old = zarr.open_group(store, mode="w", zarr_format=3), {}
            for key in protect:
                if key in old and key in want and old[key] != want[key]:
                    raise StoreError(f"store {self.url!r} already holds another {key!r} root attribute (from another "
                                     f"run or catalog); it is never replaced: pass a new --out for this run")
            new = {**old, **want}
            changed = new != old
            if changed:
                root.attrs.put(new)
            for k in kinds:
                for path in (k, f"{k}/{_FAILURES}", f"{k}/{_INDEX}"):
                    try:
                        zarr.open_group(store, path=path, mode="r", zarr_format=3)
                    except FileNotFoundError:
                        zarr.open_group(store, path=path, mode="w", zarr_format=3)
                        changed = True
            if not changed:
                break
            with self._lock():
                try:
                    session.commit("init", metadata={"s2n:event": "init"})
                    break
                except icechunk.ConflictError:
                    continue  # another builder committed meanwhile: look again (and check demo_truth again)
        self.refresh()

    def _created_meanwhile(self) -> bool:
        """After a failed create: whether another builder's create of this repository completes within
        :data:`CREATE_RACE_S` seconds (its first objects are written before the repository exists, so the
        loser of the race sees a prefix that is "not clean" and, for a moment, no repository)."""
        deadline = time.monotonic() + CREATE_RACE_S
        while not self.exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Local folders: an exclusive file lock around commits (icechunk's local storage has no conditional
        writes); object stores commit with conditional writes and need none."""
        if not self.location.is_local:
            yield
            return
        import fcntl

        self.location.path.mkdir(parents=True, exist_ok=True)
        with open(self.location.path / ".s2n-commit.lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _commit(self, session: Any, message: str, metadata: Mapping[str, Any]) -> str:
        """Commit; if another build committed meanwhile, rebase when the changes do not overlap, else refuse."""
        import icechunk

        with self._lock():
            try:
                return session.commit(message, metadata=json_safe(dict(metadata)),
                                      rebase_with=icechunk.ConflictDetector(), rebase_tries=100)
            except icechunk.RebaseFailedError as exc:
                conflicts = "; ".join(str(c) for c in getattr(exc, "conflicts", [])[:5]) or redact(exc)[:300]
                raise StoreError(f"another build on store {self.url!r} changed the same ROIs at the same time "
                                 f"({conflicts}); this run's last batch was not committed and the store is unchanged "
                                 "by it: rerun the build when the other one has finished (finished ROIs are kept)"
                                 ) from exc

    def writer(self, kind: str, *, config: Mapping[str, Any], run_meta: Mapping[str, Any] | None = None,
               commit_every: int = 256, commit_seconds: float = 60.0,
               on_event: Callable[[str, dict], None] | None = None) -> StoreWriter:
        """A :class:`StoreWriter` for one build run of ``kind`` with ``config``."""
        return StoreWriter(self, kind, config=config, run_meta=run_meta or {}, commit_every=commit_every,
                           commit_seconds=commit_seconds, on_event=on_event)

    def write_roi(self, kind: str, name: str, groups: Mapping[str, xr.Dataset], attrs: Mapping[str, Any], *,
                  config: Mapping[str, Any] | None = None) -> None:
        """Write one ROI in its own commit (tools and tests; builders write through :meth:`writer`)."""
        w = self.writer(kind, config=config or {})
        sink = w.sink()
        sink.write_roi(kind, name, groups, attrs)
        w.collect(sink)
        w.commit(f"{kind}/{name}: written")

    def record_failure(self, kind: str, name: str, roi_id: str, stage: str, reason: str, *,
                       config: Mapping[str, Any] | None = None) -> None:
        """Record one failure in its own commit (tools and tests; builders write through :meth:`writer`)."""
        w = self.writer(kind, config=config or {})
        sink = w.sink()
        sink.record_failure(kind, name, roi_id, stage, reason)
        w.collect(sink)
        w.commit(f"{kind}/{name}: failed")

    def check_identity(self, kind: str, jobs: Mapping[str, str], config: Mapping[str, Any]) -> None:
        """Refuse a run whose ROI list or config differs from what the store holds under the same names.

        ``jobs`` maps ROI names to this run's ``roi_id``. An ROI of the store with another ``roi_id`` or
        built with another config makes a :class:`StoreError` that spells out the difference.
        """
        chash = config_hash(config)
        index = self.index(kind)
        bad_id = [(n, e["roi_id"], jobs[n]) for n, e in index.items() if n in jobs and e.get("roi_id") != jobs[n]]
        if bad_id:
            lines = ", ".join(f"{n} holds {a!r}, this run has {b!r}" for n, a, b in bad_id[:3])
            raise StoreError(f"store {self.url!r} was built from another ROI list ({len(bad_id)} ROI(s) differ: "
                             f"{lines}); pass the same ROIs (--rois/--seed/--bbox) to resume, or a new --out")
        other = sorted({e.get("config") for n, e in index.items() if n in jobs and e.get("config") != chash})
        if other:
            known = dict(self.attrs(kind).get("configs", {}))
            diffs = []
            for h in other:
                old = known.get(h)
                if old is None:
                    diffs.append(f"config {h} (not recorded)")
                    continue
                now = json_safe(dict(config))
                keys = sorted(k for k in set(old) | set(now) if old.get(k) != now.get(k))
                diffs.append(", ".join(f"{k}: {old.get(k)!r} -> {now.get(k)!r}" for k in keys))
            raise StoreError(f"store {self.url!r} holds {kind} ROIs built with another config ({'; '.join(diffs)}); "
                             "rerun with the same settings to resume, or pass a new --out")

    def remove_rois(self, kind: str, names: list[str], *, message: str) -> None:
        """Delete ROIs (groups, failure records, index entries) in one commit (``--repair``, ``--retry-failed``)."""
        import zarr

        if not names:
            return
        session = self.repo.writable_session(_BRANCH)
        root = zarr.open_group(session.store, mode="r+", zarr_format=3)
        part = root[_check_kind(kind)]
        present = set(part.group_keys())
        fails = set(part[_FAILURES].group_keys()) if _FAILURES in present else set()
        for n in names:
            if n in present:
                del part[n]
            if n in fails:
                del part[_FAILURES][n]
        _write_index(session.store, kind, {n: {"status": "removed"} for n in names})
        self._commit(session, message, {"s2n:event": "remove", "kind": kind, "rois": names})
        self.refresh()

    def set_part_attrs(self, kind: str, compute: Callable[[DatasetStore], dict], *, message: str,
                       metadata: Mapping[str, Any]) -> str:
        """Set the attributes of a part to ``compute(store at the latest version)``, in one commit; computed
        again if another build committed meanwhile (so they always match the store's content)."""
        import icechunk
        import zarr

        for _ in range(100):
            session = self.repo.writable_session(_BRANCH)
            view = DatasetStore(self.location)
            view._repo, view._session = self.repo, session
            attrs = json_safe(compute(view))
            group = zarr.open_group(session.store, path=_check_kind(kind), mode="r+", zarr_format=3)
            if dict(group.attrs) == attrs:  # nothing to record (a rerun that found everything done)
                self.refresh()
                return session.snapshot_id
            group.attrs.put(attrs)
            with self._lock():
                try:
                    sid = session.commit(message, metadata=json_safe(dict(metadata)))
                    self.refresh()
                    return sid
                except icechunk.ConflictError:
                    continue
        raise StoreError(f"store {self.url!r}: the part attributes could not be committed (other builds kept "
                         "committing); rerun the build")  # pragma: no cover

    # ------------------------------------------------------------------------------------------ checks
    def check_workers_see(self, client: Any) -> None:
        """A local store and a cluster: every worker must see the store's folder (a nonce file), else a
        :class:`StoreError` says to use an object store URL or a shared file system."""
        if client is None or not self.location.is_local:
            return
        folder = self.location.path
        nonce = uuid.uuid4().hex
        probe = folder / f".s2n-nonce-{nonce}"
        probe.write_text(nonce)
        try:
            seen = client.run(_sees_nonce, str(probe), nonce)
        finally:
            probe.unlink(missing_ok=True)
        blind = sorted(w for w, ok in seen.items() if not ok)
        if blind:
            raise StoreError(f"store {self.url!r} is a local folder that {len(blind)} of {len(seen)} Dask worker(s) "
                             f"cannot see ({', '.join(blind[:3])}): they share no disk with this machine. Use an "
                             "object store URL (az://container/prefix, s3://, gs://) or a shared file system "
                             "mounted at the same path on every worker")

    def verify(self, kinds: tuple[str, ...] = KINDS) -> pd.DataFrame:
        """Read every chunk of every finished ROI: the corrupt or incomplete ones (``kind``, ``roi``, ``problem``)."""
        rows = []
        for kind in kinds:
            if not self.has_group(kind):
                continue
            try:
                present = set(self.group(kind).group_keys())
            except StoreError as exc:
                rows.append({"kind": kind, "roi": "*", "problem": str(exc)[:300]})
                continue
            index = self.index(kind)
            for name, entry in index.items():
                if entry.get("status") != "written":
                    continue
                problem = ""
                if name not in present:
                    problem = "indexed as written but its group is missing"
                else:
                    try:
                        subs = set(self.group(f"{kind}/{name}").group_keys())
                        want = set(entry.get("subgroups") or subs)
                        if not self.group(f"{kind}/{name}").attrs.get(COMPLETE_ATTR):
                            problem = "no completion marker"
                        elif want - subs:
                            problem = f"missing group(s) {sorted(want - subs)}"
                        else:
                            for sub in sorted(want):
                                g = self.group(f"{kind}/{name}/{sub}")
                                for key in g.array_keys():
                                    g[key][...]  # every chunk, its checksum checked
                    except Exception as exc:  # noqa: BLE001 - any damage is reported, not raised
                        problem = f"{type(exc).__name__}: {redact(str(exc).splitlines()[0] if str(exc) else exc)[:200]}"
                if problem:
                    rows.append({"kind": kind, "roi": name, "problem": problem})
        return pd.DataFrame(rows, columns=["kind", "roi", "problem"])


def _sees_nonce(path: str, nonce: str) -> bool:
    try:
        with open(path) as f:
            return f.read() == nonce
    except OSError:
        return False


def _write_index(store: Any, kind: str, entries: Mapping[str, dict]) -> None:
    """One index node: the entries of one commit batch (sorted names: time, then a random tail)."""
    import zarr

    key = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    zarr.open_group(store, path=f"{kind}/{_INDEX}/{key}", mode="w", zarr_format=3,
                    attributes={"rois": json_safe(dict(entries))})


# ---------------------------------------------------------------------------------------------------
class StoreWriter:
    """The driver's side of a build run: hands out :class:`RoiSink` forks, merges what tasks return and
    commits in batches of ``commit_every`` ROIs (or every ``commit_seconds``), each with its index slice.

    Memory and commit count stay bounded: only the current batch's forks are held, and a run of N ROIs
    makes about ``N / commit_every`` commits.
    """

    def __init__(self, store: DatasetStore, kind: str, *, config: Mapping[str, Any], run_meta: Mapping[str, Any],
                 commit_every: int, commit_seconds: float, on_event: Callable[[str, dict], None] | None) -> None:
        self.store = store
        self.kind = _check_kind(kind)
        self.config = json_safe(dict(config))
        self.config_hash = config_hash(config)
        self.run_meta = json_safe(dict(run_meta))
        self.commit_every, self.commit_seconds = int(commit_every), float(commit_seconds)
        self.on_event = on_event
        self.direct = store.location.scheme == "memory"  # icechunk's in-memory storage cannot fork
        self.n_commits = 0
        self.id = uuid.uuid4().hex  # in each sink: a sink of another run or store is refused, not merged
        self._new_session()

    def _new_session(self) -> None:
        self.session = self.store.repo.writable_session(_BRANCH)
        self._base = self.session if self.direct else self.store.repo.writable_session(_BRANCH)
        self.pending: dict[str, dict[str, dict]] = {}
        self.n_pending = 0
        self._t0 = time.monotonic()

    def sink(self) -> RoiSink:
        """A sink for one task (a fork of the current base; for ``memory://``, the session itself)."""
        if self.direct:
            return RoiSink(self.session, self.store.url, self.config_hash, direct=True, writer=self.id)
        return RoiSink(self._base.fork(), self.store.url, self.config_hash, writer=self.id)

    def collect(self, sink: RoiSink) -> None:
        """Merge a task's sink; commit when the batch is full.

        Only a sink this writer handed out is merged: one of another run (on a shared Dask cluster, a task
        whose key another build also used) would commit references to chunks written elsewhere.
        """
        if getattr(sink, "writer", None) != self.id:
            raise StoreError(f"a task returned the writes of another run (store {getattr(sink, 'url', '?')!r}) to "
                             f"this run of {self.store.url!r}; nothing of it was merged. Do builds on a shared "
                             "cluster use task keys of their own? (sen2naip_xr adds a token per run to its keys); "
                             "rerun the build: finished ROIs are kept")
        if not sink.direct:
            self.session.merge(sink.session)
        for kind, entries in sink.entries.items():
            self.pending.setdefault(kind, {}).update(entries)
            self.n_pending += len(entries)
            for name, e in entries.items():
                self._event(e["status"], {"kind": kind, "roi": name})
        if self.n_pending >= self.commit_every or (self.n_pending and time.monotonic() - self._t0 > self.commit_seconds):
            self.commit()

    def write_dataset(self, path: str, ds: xr.Dataset) -> None:
        """An auxiliary Dataset (e.g. ``synthetic/_embeddings``), in the current batch."""
        ds = _zarr_ready(ds)
        ds.to_zarr(self.session.store, group=path, mode="w", zarr_format=3, consolidated=False,
                   encoding=_encoding(ds))
        self.n_pending += 1

    def commit(self, message: str | None = None) -> str | None:
        """Commit what was merged (and its index slice); None when there was nothing."""
        if not self.n_pending and not self.session.has_uncommitted_changes:
            return None
        for kind, entries in self.pending.items():
            if entries:
                _write_index(self.session.store, kind, entries)
        names = sorted(n for e in self.pending.values() for n in e)
        sid = self.store._commit(self.session, message or f"{self.kind}: {len(names)} ROI(s)",
                                 {**self.run_meta, "s2n:event": "batch", "kind": self.kind,
                                  "config_hash": self.config_hash, "rois": len(names)})
        self.n_commits += 1
        self._new_session()
        self.store.refresh()
        self._event("commit", {"snapshot": sid, "n_rois": len(names)})
        return sid

    def finish(self, n_rois: int, message: str) -> str:
        """Commit the last batch, then the part's attributes (counts, config); that commit's metadata holds
        the run's config."""
        self.commit()
        chash, config = self.config_hash, self.config

        def part_attrs(view: DatasetStore) -> dict:
            old = view.attrs(self.kind)
            fails = view.failures(self.kind)
            return {"n_rois": int(n_rois), "n_written": len(view.rois(self.kind)), "n_failed": int(len(fails)),
                    "failures_by_stage": {str(k): int(v) for k, v in fails["stage"].value_counts().sort_index().items()},
                    "config": config, "config_hash": chash,
                    "configs": {**dict(old.get("configs", {})), chash: config}}

        sid = self.store.set_part_attrs(self.kind, part_attrs, message=message,
                                        metadata={**self.run_meta, "s2n:event": "run", "kind": self.kind,
                                                  "config": config, "config_hash": chash})
        self._event("finish", {"snapshot": sid})
        return sid

    def _event(self, event: str, info: dict) -> None:
        if self.on_event is not None:
            self.on_event(event, info)
