"""Benchmark the data pipeline: DataLoader windows/s against a training step, and peak RSS of building the datasets.

* Loader: windows per second the training DataLoader serves (shuffled), after a warm-up, with 0 and 2 workers, at the
  benchmark's shapes (batch 256, lookback 168, horizon 24, 8 features, memory-mapped float32 ``.npy`` of 1e6 points)
  and at ``configs/default.yaml``'s (batch 64, lookback 52, horizon 4, the bundled CO2 series).
* Step: one training step (forward, MSE, backward, gradient clipping at 1.0, AdamW) of the plain LSTM regressor at the
  same shapes: hidden 32 x 2 layers for the default, hidden 64 x 2 for the benchmark shapes. Target: loader >= 20x.
* Memory: each size runs in a fresh subprocess that builds the DataModule and its train/val/test datasets from a
  memory-mapped ``(points, 8)`` float32 ``.npy`` and reports ``ru_maxrss``; a subprocess that only imports the same
  modules gives the baseline. Target: ``(peak - baseline) / raw < 1.5``. Pages of the mapped file that were read count
  in RSS (as file-backed, reclaimable pages): reading the whole file once puts the ratio at 1.0 or above.

Run: ``.venv/bin/python scripts/benchmark_data.py`` (minutes, ~700 MB in a temporary folder), or ``--quick``.
Timings on a shared machine are noisy: rerun on a quiet one before quoting them.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = 8
BENCH = {"batch": 256, "lookback": 168, "horizon": 24, "hidden": 64}
DEFAULT = {"batch": 64, "lookback": 52, "horizon": 4, "hidden": 32}


def write_npy(path: Path, points: int, columns: int = FEATURES, chunk: int = 1 << 20) -> None:
    """A ``(points, columns)`` float32 random walk plus noise, written in chunks (never held whole in memory)."""
    rng = np.random.default_rng(0)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(points, columns))
    level = np.zeros(columns)
    for begin in range(0, points, chunk):
        steps = rng.standard_normal((min(chunk, points - begin), columns))
        walk = level + np.cumsum(0.01 * steps, axis=0)
        level = walk[-1]
        array[begin : begin + len(walk)] = walk + rng.standard_normal(walk.shape)
    array.flush()
    del array


def npy_module(path: Path, workers: int = 0):
    from lightning_lstm.data.datamodule import TimeSeriesDataModule

    return TimeSeriesDataModule(
        path=str(path),
        time_column=None,
        target_columns=["0"],
        feature_columns=[str(c) for c in range(FEATURES)],
        lookback=BENCH["lookback"],
        horizon=BENCH["horizon"],
        batch_size=BENCH["batch"],
        num_workers=workers,
        window_norm="none",
        pin_memory=False,
    )


def child_rss(path: str) -> None:
    """In a fresh process: import (baseline when ``path`` is empty) or build the datasets; print JSON."""
    from lightning_lstm.data.datamodule import TimeSeriesDataModule  # noqa: F401 - the baseline's imports

    windows = 0
    if path:
        dm = npy_module(Path(path))
        dm.setup("fit")
        datasets = [dm.dataset(split) for split in ("train", "val", "test")]
        windows = sum(len(d) for d in datasets)
        next(iter(dm.train_dataloader()))  # and serve one batch
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    print(
        json.dumps(
            {
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "rss_anon_kb": int(status.get("RssAnon", "0 kB").split()[0]),
                "rss_file_kb": int(status.get("RssFile", "0 kB").split()[0]),
                "windows": windows,
            }
        )
    )


def measure_rss(path: Path | None) -> dict:
    args = [sys.executable, __file__, "--child-rss", str(path or "")]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def loader_rate(dm, batches: int, warmup: int = 3) -> float:
    """Windows per second served by ``dm``'s training DataLoader after ``warmup`` batches."""
    loader = dm.train_dataloader()
    served, iterator = 0, iter(loader)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        served += len(batch["window_id"])
    return served / (time.perf_counter() - start)


def step_seconds(batch: int, lookback: int, features: int, horizon: int, hidden: int, steps: int) -> float:
    """Median seconds of one training step of the plain LSTM regressor (2 layers) on random ``(B, L, F)`` inputs."""
    import torch

    from lightning_lstm.model.regressor import LSTMRegressor

    torch.manual_seed(0)
    net = LSTMRegressor(features, 1, horizon, hidden_size=hidden, num_layers=2)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.randn(batch, lookback, features), torch.randn(batch, horizon, 1)
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = torch.nn.functional.mse_loss(net(x), y)  # (B, L, F) -> (B, H, 1)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        if i >= 2:  # the first steps allocate and warm up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed_table(npy: Path, batches: int, steps: int) -> list[str]:
    import torch

    from lightning_lstm.data.datamodule import TimeSeriesDataModule

    rows = [
        "| shapes | loader windows/s, 0 workers | loader windows/s, 2 workers | train step ms/batch | step windows/s "
        "| loader / step (best) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    cases = [
        (
            "default: CO2, B64 L52 F1 H4, hidden 32x2",
            DEFAULT,
            1,
            lambda w: TimeSeriesDataModule(num_workers=w, pin_memory=False),
        ),  # configs/default.yaml's data
        ("benchmark: npy, B256 L168 F8 H24, hidden 64x2", BENCH, FEATURES, lambda w: npy_module(npy, w)),
    ]
    for name, shape, features, make in cases:
        rates = []
        for workers in (0, 2):
            dm = make(workers)
            dm.setup("fit")
            rates.append(loader_rate(dm, batches))
            del dm
        seconds = step_seconds(shape["batch"], shape["lookback"], features, shape["horizon"], shape["hidden"], steps)
        step_rate = shape["batch"] / seconds
        rows.append(
            f"| {name} | {rates[0]:,.0f} | {rates[1]:,.0f} | {1000 * seconds:.1f} | {step_rate:,.0f} "
            f"| {max(rates) / step_rate:.1f}x |"
        )
    threads = torch.get_num_threads()
    rows.append(f"\ntorch {torch.__version__}, {threads} intra-op threads; target: loader / step >= 20x")
    return rows


def memory_table(folder: Path, sizes: list[int]) -> list[str]:
    baseline = measure_rss(None)["maxrss_kb"] * 1024
    rows = [
        "| points x 8 | raw float32 MB | baseline MB | peak RSS MB | (peak - baseline) / raw | anon / file MB at end "
        "| windows |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for points in sizes:
        path = folder / f"series_{points}.npy"
        write_npy(path, points)
        result = measure_rss(path)
        raw = points * FEATURES * 4
        peak = result["maxrss_kb"] * 1024
        rows.append(
            f"| {points:.0e} | {raw / 1e6:,.0f} | {baseline / 1e6:,.0f} | {peak / 1e6:,.0f} | "
            f"{(peak - baseline) / raw:.2f} | {result['rss_anon_kb'] / 1e3:,.0f} / {result['rss_file_kb'] / 1e3:,.0f} "
            f"| {result['windows']:,} |"
        )
        if points != sizes[0]:
            path.unlink()  # keep the first (smallest) file for the loader benchmark
    rows.append("\ntarget: (peak - baseline) / raw < 1.5 (ru_maxrss of a fresh process per size)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few batches: checks that it runs")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--child-rss", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss is not None:
        child_rss(args.child_rss)
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    sizes = [10**5, 10**6] if args.quick else [10**6, 10**7]
    batches, steps = (20, 3) if args.quick else (300, 20)
    with tempfile.TemporaryDirectory(prefix="benchmark_data_") as tmp:
        folder = Path(tmp)
        memory = memory_table(folder, sizes)
        speed = speed_table(folder / f"series_{sizes[0]}.npy", batches, steps)
    print("## Loader against a training step\n")
    print("\n".join(speed))
    print("\n## Peak RSS of building the datasets (memory-mapped .npy)\n")
    print("\n".join(memory))


if __name__ == "__main__":
    main()
