"""Progress reporting: a tqdm bar on a terminal or in a notebook, plain periodic lines in logs.

A log (stderr redirected to a file, a batch job, CI) gets no ``\\r`` bar: one line every ``every`` seconds
and one at the end, e.g. ``search cross-sensor: 12/50 (24%) in 31 s``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

__all__ = ["progress", "interactive"]


def interactive(stream: TextIO | None = None) -> bool:
    """True on a terminal or in a Jupyter kernel (where tqdm draws a widget)."""
    stream = stream or sys.stderr
    if "ipykernel" in sys.modules:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """What the package uses of a tqdm bar (``update``, ``set_postfix``, ``close``, iteration), as lines."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 disable: bool = False, every: float = 30.0, file: TextIO | None = None) -> None:
        self.iterable, self.total, self.desc, self.disable = iterable, total, desc, disable
        self.every, self.file = every, file or sys.stderr
        self.n, self.postfix = 0, ""
        self.t0 = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        for x in self.iterable or ():
            yield x
            self.update()
        self.close()

    def _line(self) -> None:
        if self.disable:
            return
        of = f"/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.n}{of} in {time.monotonic() - self.t0:.0f} s{post}", file=self.file, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line()

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", enabled: bool = True,
             file: TextIO | None = None, every: float = 30.0) -> Any:
    """A tqdm bar when :func:`interactive`, else a :class:`LineProgress`; nothing is shown unless ``enabled``."""
    file = file or sys.stderr
    if enabled and interactive(file):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, file=file)
    return LineProgress(iterable, total=total, desc=desc, disable=not enabled, every=every, file=file)
