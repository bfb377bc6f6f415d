"""Every benchmark in one command: each figure against a baseline measured in the same run.

    python benchmarks/run.py                 # the full run (a few minutes); writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick         # tiny sizes, under two minutes (CI); writes a temporary file
    python benchmarks/run.py --only finish,voice --out /tmp/results.md

It prints one table (figure, ours, baseline, ratio, target, met) and writes it, with the machine's
description, to `--out`. Without `--out`, a full run of every figure writes benchmarks/RESULTS.md (the committed
results) and any other run (`--quick`, `--only`) a file in the temporary directory, so CI never overwrites
the committed full results. The emulator runs in a process of its own.

Benchmarks print, they do not assert: the exit status is 0 when every figure ran, whatever its numbers,
and 1 when one crashed (its rows say so, and the other figures still run).
"""

from __future__ import annotations

import argparse
import datetime
import faulthandler
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import bench_batch
import bench_concurrent
import bench_finish
import bench_form
import bench_memory
import bench_startup
import bench_stream
import bench_voice
from _harness import HERE, Row, Server, machine

Figure = Callable[[Server, bool], list[Row]]
FIGURES: dict[str, Figure] = {
    "finish": bench_finish.run,
    "concurrent": bench_concurrent.run,
    "stream": bench_stream.run,
    "batch": bench_batch.run,
    "memory": bench_memory.run,
    "startup": bench_startup.run,
    "form": bench_form.run,
    "voice": bench_voice.run,
}
STAGE_DELAY = 0.01  # seconds between a task's status frames on the emulator
MAX_UPLOAD_MB = 1024  # the memory figure uploads 200 MB; the emulator's own limit is 100 MB
# A hung run ends with every thread's traceback instead of hanging CI (the emulator process ends with it).
RUN_LIMIT = {True: 600.0, False: 3600.0}


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    digits = 0 if abs(value) >= 100 or (not unit and value == int(value)) else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f} {unit}".strip()


def table(rows: list[Row]) -> list[str]:
    lines = ["| figure | ours | baseline | ratio | target | met |", "|---|---:|---:|---:|---|---|"]
    for row in rows:
        baseline = fmt(row.baseline, row.unit) + (f" ({row.baseline_name})" if row.baseline_name else "")
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}×"
        met = {True: "yes", False: "**no**", None: "—"}[row.met]
        lines.append(f"| {row.figure} | {fmt(row.ours, row.unit)} | {baseline} | {ratio} | "
                     f"{row.target.describe(row.unit)} | {met} |")
    return lines


def notes(rows: list[Row]) -> list[str]:
    return [f"- {row.figure}: {row.note}" for row in rows if row.note]


def crashed(name: str, exc: BaseException) -> Row:
    return Row(f"{name}: CRASHED", None, None, "", note=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
               failed=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, under two minutes (what CI runs)")
    parser.add_argument("--out", type=Path, help="where to write the results (default: see above)")
    parser.add_argument("--only", default="", help=f"comma-separated figures to run, of: {', '.join(FIGURES)}")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(FIGURES)
    unknown = [name for name in chosen if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    # Only a full run of every figure replaces the committed results.
    partial = args.quick or len(chosen) < len(FIGURES)
    out = args.out or (Path(tempfile.gettempdir()) / "wiro-jupyter-benchmarks.md" if partial else HERE / "RESULTS.md")

    faulthandler.dump_traceback_later(RUN_LIMIT[args.quick], exit=True)
    # The clients' journals go to a scratch home, and nothing reuses an earlier task (WIRO_REUSE).
    home = tempfile.TemporaryDirectory(prefix="wiro-bench-")
    os.environ["WIRO_HOME"] = home.name
    os.environ.pop("WIRO_REUSE", None)
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[Row] = []
    failures = 0
    with home, Server(stage_delay=STAGE_DELAY, max_upload_mb=MAX_UPLOAD_MB) as server:
        for index, name in enumerate(chosen, 1):
            print(f"[{index}/{len(chosen)}] {name} …", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                rows += FIGURES[name](server, args.quick)
            except Exception as exc:
                failures += 1
                traceback.print_exc()
                rows.append(crashed(name, exc))
            print(f"      {name}: {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    faulthandler.cancel_dump_traceback_later()

    lines = table(rows)
    print("\n".join(lines))
    print("\n".join(notes(rows)))
    print(f"\n{'quick' if args.quick else 'full'} run: {elapsed:.0f} s; written to {out}")
    load_after = os.getloadavg()
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    report = [
        "# Benchmark results",
        "",
        f"`{command}` on {when}: {elapsed:.0f} s. Every figure against a baseline measured in the same run, the "
        "emulator in a process of its own; latencies are medians (p50) or 95th percentiles over the samples, "
        "wall times medians of repeated runs. Targets are what `met` checks; a miss is reported, never an error.",
        "",
        *lines,
        "",
        "Notes:",
        "",
        *notes(rows),
        "",
        "## Machine",
        "",
        *[f"- {label}: {value}" for label, value in machine()],
        f"- load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after",
        "",
    ]
    out.write_text("\n".join(report))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
