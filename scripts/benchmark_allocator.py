"""Benchmark glibc malloc tuning on a plain LSTM training loop.

Runs each mode in a fresh subprocess, alternating the modes (and rotating their
order every round) so that background load hits all of them alike, then prints
a markdown table of medians:

* ``untuned``: glibc defaults.
* ``env``: ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` set at start-up.
* ``inprocess``: :func:`lightning_lstm.runtime.tune_allocator` after ``import torch``.
* ``inprocess-mmapmax``: the same with the ``M_MMAP_MAX=0`` fallback strategy.

Example::

    python scripts/benchmark_allocator.py --repeats 3 --modes untuned,env,inprocess
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736"}
MODES = ("untuned", "env", "inprocess", "inprocess-mmapmax")
COLUMNS = (
    ("wall_s", "wall s", "{:.2f}"),
    ("cpu_s", "user+sys s", "{:.2f}"),
    ("minflt", "minor faults", "{:,.0f}"),
    ("maxrss_mib", "peak RSS MiB", "{:.0f}"),
    ("windows_per_s", "windows/s", "{:,.0f}"),
)


def run_child(mode: str, batches: int, batch_size: int, lookback: int, threads: int) -> dict[str, float | str]:
    """Trains the LSTM for ``batches`` steps in this process and measures it."""
    import torch

    # Imported in every mode so that all runs carry the same package (and RSS).
    from lightning_lstm.runtime import tune_allocator

    report = None
    if mode.startswith("inprocess"):
        strategies = ("mmap_max",) if mode == "inprocess-mmapmax" else ("mmap_threshold",)
        report = tune_allocator(True, strategies=strategies)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    windows = batches * batch_size
    series = torch.randn(windows + lookback, 8)
    inputs = series.unfold(0, lookback, 1).transpose(1, 2)  # (windows + 1, lookback, 8) view
    targets = torch.randn(windows + 1, 1)
    lstm = torch.nn.LSTM(8, 64, num_layers=2, batch_first=True)
    head = torch.nn.Linear(64, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    order = torch.randperm(windows)

    usage0, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for batch in range(batches):
        index = order[batch * batch_size : (batch + 1) * batch_size]
        optimizer.zero_grad(set_to_none=True)
        output, _ = lstm(inputs[index])
        loss = torch.nn.functional.mse_loss(head(output[:, -1]), targets[index])
        loss.backward()
        optimizer.step()
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "mode": mode,
        "applied": "-" if report is None else str(report.applied),
        "wall_s": wall,
        "cpu_s": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
        "minflt": float(usage1.ru_minflt - usage0.ru_minflt),
        "maxrss_mib": usage1.ru_maxrss / 1024,
        "windows_per_s": windows / wall,
    }


def launch(mode: str, args: argparse.Namespace) -> dict[str, float | str]:
    """Runs one measurement of ``mode`` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if mode == "env":
        env.update(ENV_SETTINGS)
    command = [sys.executable, __file__, "--child", mode, "--batches", str(args.batches)]
    command += ["--batch-size", str(args.batch_size), "--lookback", str(args.lookback), "--threads", str(args.threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown_table(results: dict[str, list[dict[str, float | str]]]) -> str:
    """Formats medians per mode (with min-max for wall time) as markdown."""
    header = "| mode | runs | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    base = statistics.median(float(r["wall_s"]) for r in results[next(iter(results))])
    for mode, runs in results.items():
        cells = []
        for key, _, fmt in COLUMNS:
            values = [float(r[key]) for r in runs]
            cell = fmt.format(statistics.median(values))
            if key == "wall_s":
                cell += f" ({min(values):.2f}-{max(values):.2f}, x{base / statistics.median(values):.2f})"
            cells.append(cell)
        lines.append(f"| {mode} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each round runs every mode once")
    parser.add_argument("--modes", default="untuned,env,inprocess", help=f"comma-separated subset of {MODES}")
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lookback", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per run")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Runs the alternating benchmark, or one child measurement."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.batches, args.batch_size, args.lookback, args.threads)))
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; choose from {MODES}")
    results: dict[str, list[dict[str, float | str]]] = {mode: [] for mode in modes}
    for round_index in range(args.repeats):
        rotated = modes[round_index % len(modes) :] + modes[: round_index % len(modes)]
        for mode in rotated:
            result = launch(mode, args)
            results[mode].append(result)
            print(
                f"round {round_index + 1} {mode}: wall {result['wall_s']:.2f}s faults {result['minflt']:,.0f} "
                f"rss {result['maxrss_mib']:.0f} MiB applied={result['applied']}",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"LSTM 64x2, batch {args.batch_size}, lookback {args.lookback}, {args.batches} batches, "
        f"{args.threads} thread(s); medians of {args.repeats} alternating runs\n"
    )
    print(markdown_table(results))


if __name__ == "__main__":
    main()
