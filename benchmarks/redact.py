"""Benchmark secret redaction: what ``redact`` and the log record factory cost.

    python benchmarks/redact.py [--repeats 5]

1. ``redact`` on texts the package records: a failure reason quoting a signed URL (GDAL's message), a
   log line without secrets, a connection string, a 1 MB log; microseconds per call (median of
   ``--repeats`` timed loops).
2. Linear time: ``redact`` of adversarial inputs (runs of ``=``, ``a_``, quotes, secret names without
   values) at 100, 200 and 400 kB, the best of ``--repeats`` runs; the ratio of the 400 kB to the
   100 kB time should be ~4 (a regex that backtracks would give ~16 or worse).
3. Logging: 20,000 ``logger.warning("Failed to load %s", signed_url)`` records formatted by a handler,
   with the default log record factory and with the redacting one ``sen2naip_xr`` installs; the same
   with a message without secrets. Also the cost of ``install_log_redaction()`` once it is installed
   (every load task calls it).

Prints a table and writes ``benchmarks/results/redact.json``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ORIGINAL_FACTORY = logging.getLogRecordFactory()  # before sen2naip_xr installs its own

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _machine import cpu_and_memory  # noqa: E402

from sen2naip_xr._safe import install_log_redaction, redact  # noqa: E402

SIGNED = ("http://127.0.0.1:40000/blob/sentinel2l2a01/sentinel2-l2/11/S/MS/2022/05/15/S2X_MSIL2A_20220515_N0400_"
          "R070_T11SMS_a.SAFE/GRANULE/IMG_DATA/B04_10m.tif?st=2026-12-01T21:48:18Z&se=2026-12-01T22:48:18Z&sp=rl"
          "&sv=2021-06-08&sr=c&sig=tok2")
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _per_call(fn, n: int, repeats: int, best: bool = False) -> float:
    """Median (or, with ``best``, least) seconds per call of ``fn`` over ``repeats`` loops of ``n`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return min(times) if best else statistics.median(times)


def bench_texts(repeats: int) -> list[dict]:
    reason = f"3 attempts: '/vsicurl/{SIGNED}' not recognized as being in a supported file format."
    texts = {
        "failure reason with a signed URL": (reason, 2000),
        "log line without secrets": ("dask dashboard: http://127.0.0.1:8787/status; workers: 2", 2000),
        "connection string": (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};", 2000),
        "1 MB log (reasons + plain lines)": (("INFO: wrote ROI_00001 in 1.2 s\n" * 30 + reason + "\n") * 800, 3),
    }
    rows = []
    for name, (text, n) in texts.items():
        s = _per_call(lambda t=text: redact(t), n, repeats)
        rows.append({"case": name, "chars": len(text), "us_per_call": s * 1e6})
    return rows


def bench_linear(repeats: int) -> list[dict]:
    units = {"'='": "=", "'a_'": "a_", "quote + name": "'token': '", "'sig=' runs": "sig=", "'%3D'": "%3D",
             "prefix words": "b_"}
    rows = []
    for name, unit in units.items():
        t = {}
        for kb in (100, 200, 400):
            text = unit * (kb * 1000 // len(unit))
            t[kb] = _per_call(lambda x=text: redact(x), 1, repeats, best=True)  # least: GC and load noise
        rows.append({"input": name, "ms_100kB": t[100] * 1e3, "ms_200kB": t[200] * 1e3, "ms_400kB": t[400] * 1e3,
                     "ratio_400_100": t[400] / t[100]})
    return rows


def bench_logging(repeats: int) -> list[dict]:
    class Format(logging.Handler):
        def emit(self, record):
            self.format(record)

    log = logging.getLogger("benchmark.redact")
    log.propagate = False
    log.handlers = [Format()]
    log.setLevel(logging.DEBUG)
    n = 20000
    install_log_redaction()
    redacting = logging.getLogRecordFactory()
    rows = []
    for label, msg, arg in (("signed URL", "Failed to load %s:%d", SIGNED),
                            ("no secret", "Failed to load %s:%d", "/data/naip/m_3211700.tif")):
        per = {}
        for factory_name, factory in (("default", ORIGINAL_FACTORY), ("redacting", redacting)):
            logging.setLogRecordFactory(factory)
            per[factory_name] = _per_call(lambda m=msg, a=arg: log.warning(m, a, 1), n, repeats)
        logging.setLogRecordFactory(redacting)
        rows.append({"record": label, "us_default": per["default"] * 1e6, "us_redacting": per["redacting"] * 1e6,
                     "ratio": per["redacting"] / per["default"]})
    rows.append({"record": "install_log_redaction() (installed)", "us_default": float("nan"),
                 "us_redacting": _per_call(install_log_redaction, 20000, repeats) * 1e6, "ratio": float("nan")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    machine = cpu_and_memory()
    print(f"machine: {machine} (shared, noisy: compare ratios within this run)")
    texts, linear, logs = bench_texts(args.repeats), bench_linear(args.repeats), bench_logging(args.repeats)
    print(f"\n{'redact(text)':40s} {'chars':>9s} {'us/call':>9s}")
    for r in texts:
        print(f"{r['case']:40s} {r['chars']:9d} {r['us_per_call']:9.1f}")
    print(f"\n{'adversarial input':20s} {'100 kB ms':>10s} {'200 kB ms':>10s} {'400 kB ms':>10s} {'400/100':>8s}")
    for r in linear:
        print(f"{r['input']:20s} {r['ms_100kB']:10.1f} {r['ms_200kB']:10.1f} {r['ms_400kB']:10.1f} {r['ratio_400_100']:8.2f}")
    print(f"\n{'log record (formatted)':38s} {'default us':>10s} {'redacting us':>12s} {'ratio':>6s}")
    for r in logs:
        print(f"{r['record']:38s} {r['us_default']:10.1f} {r['us_redacting']:12.1f} {r['ratio']:6.2f}")
    out = HERE / "results" / "redact.json"
    out.parent.mkdir(exist_ok=True)
    from sen2naip_xr._safe import dumps_strict

    out.write_text(dumps_strict({"machine": machine, "texts": texts, "linear": linear, "logging": logs}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
