"""``fit`` against a plain PyTorch loop and bare Lightning per step, at three shapes; peak RSS (issues 16 and 24).

    python scripts/benchmark_overhead.py --threads 1 --rounds 5   # the README table: about 9 minutes on 2 quiet cores
    python scripts/benchmark_overhead.py            # 3 rounds, all usable cores
    python scripts/benchmark_overhead.py --quick    # seconds: checks that every part works (numbers meaningless)

Both arms run with the CLI's runtime settings (``lightning_lstm.runtime.tune_allocator``, no NaN fill of new tensors),
one univariate series (noisy daily and weekly sines), LSTM 64 x 2, lookback 168, horizon 24, AdamW 1e-3, clipping at
1.0, at batch 128 and 32; and a tiny shape (LSTM 4 x 1, lookback 8, batch 8) whose step is almost all overhead, so its
``fit - plain`` column is fit's fixed cost per step (Lightning's loop, the callbacks, logging). At every shape a
third arm, ``bare`` (Lightning), trains the same model in a ``Trainer`` with no logger, no callbacks and a one-line
``training_step``: Lightning's own share of that cost.
Every run is a fresh interpreter (``scripts/benchmark.py``'s children, re-shaped), the arms alternate and their
order rotates each round; the table reports medians and the ratio fit / plain per shape, in wall time and in the
process's CPU time (with ``--threads 1`` the steadier one on a shared machine, where wall times drift with others'
load). ``fit - bare`` is each round's own difference (median and range over rounds), in wall and CPU time; the
regression guard line reads the CPU one (the host's work per step, whatever else the machine runs). The RSS rows are
``VmRSS`` after the imports, after the data, after the first step and ``VmHWM`` at the end, in one fit process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts import benchmark as base  # noqa: E402  (the children, re-shaped below)

SHAPES = {"b128": (128, 168, 64, 2), "b32": (32, 168, 64, 2), "tiny": (8, 8, 4, 1)}  # batch, lookback, hidden, layers
HORIZON, LR, TEST_FRACTION = 24, 1e-3, 0.2
HEAVY = ("pandas", "tensorboard", "scipy", "sklearn")
FIT_OVER_BARE_MS = 0.3  # issue 24: the project's own host cost per step at the tiny shape, above bare Lightning


def reshape(shape: str) -> None:
    """Points ``scripts/benchmark.py``'s children at one of :data:`SHAPES` (they read its module constants)."""
    batch, lookback, hidden, layers = SHAPES[shape]
    base.FEATURES, base.LOOKBACK, base.HORIZON, base.BATCH, base.LR = 1, lookback, HORIZON, batch, LR
    base.HIDDEN, base.LAYERS, base.TEST_FRACTION = hidden, layers, TEST_FRACTION


def write_series(path: Path, rows: int) -> Path:
    import numpy as np

    t = np.arange(rows, dtype=np.float64)
    noise = 0.1 * np.random.default_rng(0).standard_normal(rows)
    value = np.sin(2 * np.pi * t / 24) + 0.5 * np.sin(2 * np.pi * t / 168) + noise
    np.save(path, value.astype(np.float32)[:, None])
    return path


def rss_mib(key: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


IMPORT_STEPS = (  # (label, module): imported in this order in a fresh process, the RSS growth of each
    ("numpy", "numpy"),
    ("torch", "torch"),
    ("sympy and torch._dynamo (lightning.fabric.wrappers imports them)", "torch._dynamo"),
    ("torchmetrics (with matplotlib, PIL)", "torchmetrics"),
    ("lightning.pytorch", "lightning.pytorch"),
    ("pandas (with pyarrow)", "pandas"),
    ("lightning_lstm.cli (jsonargparse, tensorboard)", "lightning_lstm.cli"),
)


def child_rss_stages(path: Path, threads: int) -> dict:
    """RSS growth per import, then after the data, after the first step, and the peak, in one fit (batch 128)."""
    import importlib

    imports = {"python": rss_mib()}
    for label, module in IMPORT_STEPS:
        before = rss_mib()
        importlib.import_module(module)
        imports[label] = rss_mib() - before

    import lightning.pytorch as pl

    from lightning_lstm.cli import build_cli

    stages = {"imports": rss_mib()}

    class Stages(pl.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            stages["data"] = rss_mib()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step == 1:
                stages["first_step"] = rss_mib()

    with tempfile.TemporaryDirectory() as root:
        cli = build_cli(base.fit_args(path, Path(root), 2, threads, True), run=False)
        stages["cli_built"] = rss_mib()
        cli.trainer.callbacks.append(Stages())
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    stages["peak"] = rss_mib("VmHWM")
    loaded = sorted(name for name in HEAVY if name in sys.modules)
    return {"stages": stages, "imports": imports, "loaded": loaded}


def launch(kind: str, path: Path, shape: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--data", str(path), "--shape", shape]
    command += ["--epochs", str(args.epochs), "--threads", str(args.threads)]
    env = {k: v for k, v in base.os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_bare(path: Path, epochs: int, threads: int) -> dict:
    """The same model, loader, AdamW groups and clipping in a bare ``Trainer``: Lightning's loop and nothing of ours."""
    import time

    import lightning.pytorch as pl
    import torch

    from lightning_lstm.model.param_groups import weight_decay_groups
    from lightning_lstm.model.regressor import LSTMRegressor
    from lightning_lstm.runtime.setup import apply_runtime

    apply_runtime(True, threads, {})  # the CLI's runtime settings, as the tuned plain loop has them
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(42)
    loader = base.datamodule(path).train_dataloader()

    class Bare(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = LSTMRegressor(base.FEATURES, 1, base.HORIZON, base.HIDDEN, base.LAYERS)

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            return torch.nn.functional.mse_loss(self.net(batch["x"]), batch["y"])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(weight_decay_groups(self.net), lr=base.LR, weight_decay=base.WEIGHT_DECAY)

    times, minflts, cpu = [], [], []

    class EpochTimer(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.start = (base.faults(), time.perf_counter(), time.process_time())

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            f0, t0, c0 = self.start
            times.append(time.perf_counter() - t0)
            minflts.append(base.faults() - f0)
            cpu.append(time.process_time() - c0)

    trainer = pl.Trainer(
        max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[EpochTimer()],
        gradient_clip_val=base.CLIP, deterministic=True, accelerator="cpu", devices=1,
    )  # fmt: skip
    trainer.fit(Bare(), train_dataloaders=loader)
    return base.summarise(times, minflts, cpu, len(loader.dataset))


def run_child(args: argparse.Namespace) -> dict:
    reshape(args.shape)
    path = Path(args.data)
    if args.child == "plain":
        return base.child_plain(path, args.epochs, args.threads, tuned=True)
    if args.child == "fit":
        return base.child_fit(path, args.epochs, args.threads, True, spikes=True, profile=None)
    if args.child == "bare":
        return child_bare(path, args.epochs, args.threads)
    return child_rss_stages(path, args.threads)


def fit_minus_bare(runs: dict[str, list[dict]], steps: int, key: str = "epoch_s") -> list[float]:
    """``fit - bare`` per step in ms for each round (``epoch_s``: wall time; ``cpu_s``: the process's CPU time),
    sorted: each round's own difference, so a slow round slows both arms alike."""
    return sorted(1000 * (f[key] - b[key]) / steps for f, b in zip(runs["fit"], runs["bare"], strict=True))


def median_and_range(diffs: list[float]) -> str:
    return f"{statistics.median(diffs):+.3f} ({diffs[0]:+.3f} to {diffs[-1]:+.3f})"


def table(results: dict[str, dict[str, list[dict]]]) -> str:
    columns = ["shape", "arm", "ms/step (min-max)", "windows/s", "x plain", "CPU ms/step", "CPU x plain",
               "fit - plain, CPU us/step", "fit - bare, ms/step (range over rounds)",
               "fit - bare, CPU ms/step (range)", "peak RSS MiB"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |"]
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape, arms in results.items():
        batch, lookback, hidden, layers = SHAPES[shape]
        plain = statistics.median(r["epoch_s"] for r in arms["plain"])
        plain_cpu = statistics.median(r["cpu_s"] for r in arms["plain"])
        for arm, runs in arms.items():
            steps = -(-runs[0]["windows"] // batch)
            epochs = [r["epoch_s"] for r in runs]
            ms = [1000 * e / steps for e in epochs]
            cpu = statistics.median(r["cpu_s"] for r in runs)  # process CPU time: less sensitive to others' load
            extra = f"{1e6 * (cpu - plain_cpu) / steps:+,.0f}" if arm != "plain" else ""
            versus_bare = median_and_range(fit_minus_bare(arms, steps)) if arm == "fit" else ""
            versus_bare_cpu = median_and_range(fit_minus_bare(arms, steps, "cpu_s")) if arm == "fit" else ""
            lines.append(
                f"| batch {batch}, lookback {lookback}, LSTM {hidden} x {layers} | {arm} | {statistics.median(ms):.1f} "
                f"({min(ms):.1f}-{max(ms):.1f}) | {statistics.median(r['windows_per_s'] for r in runs):,.0f} "
                f"| {statistics.median(epochs) / plain:.3f} | {1000 * cpu / steps:.2f} | {cpu / plain_cpu:.3f} "
                f"| {extra} | {versus_bare} | {versus_bare_cpu} "
                f"| {statistics.median(r['maxrss_mib'] for r in runs):.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes to check the script (numbers meaningless)")
    parser.add_argument("--windows", type=int, default=4_000, help="training windows per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is a warm-up")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both arms per shape")
    parser.add_argument("--threads", type=int, help="torch threads in every arm (default: the usable CPUs)")
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=list(SHAPES),
        default=list(SHAPES),
        help="shapes to time (default: all); `--shapes tiny --rounds 9` checks the guard quickly",
    )
    parser.add_argument("--child", choices=["plain", "fit", "bare", "rss"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=list(SHAPES), default="b128", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # nothing imported yet beyond the standard library: the rss child measures every import
        print(json.dumps(run_child(args)))
        return
    if args.threads is None:
        from lightning_lstm.runtime import available_cpus

        args.threads = available_cpus()
    if args.quick:
        args.windows, args.epochs, args.rounds = 300, 2, 1
    # bare: Lightning's own loop, at every shape (at the tiny one the step is all overhead)
    results: dict[str, dict[str, list[dict]]] = {shape: {"plain": [], "bare": [], "fit": []} for shape in args.shapes}
    with tempfile.TemporaryDirectory() as folder:
        lookback = max(shape[1] for shape in SHAPES.values())
        rows = int((args.windows + lookback + HORIZON) / (1 - TEST_FRACTION)) + 1
        data = write_series(Path(folder) / "series.npy", rows)
        for round_index in range(args.rounds):
            for shape in results:
                order = list(results[shape]) if round_index % 2 == 0 else list(results[shape])[::-1]
                for arm in order:
                    results[shape][arm].append(launch(arm, data, shape, args))
                    print(f"round {round_index + 1} {shape} {arm}: {results[shape][arm][-1]['epoch_s']:.2f} s/epoch",
                          file=sys.stderr)  # fmt: skip
        rss = launch("rss", data, "b128", args)
    print(f"Machine: {base.machine()}.\n")
    print(table(results))
    if "tiny" in results:
        tiny, tiny_steps = results["tiny"], -(-results["tiny"]["fit"][0]["windows"] // SHAPES["tiny"][0])
        wall, cpu = (statistics.median(fit_minus_bare(tiny, tiny_steps, key)) for key in ("epoch_s", "cpu_s"))
        verdict = "met" if cpu <= FIT_OVER_BARE_MS else "NOT MET (a regression, or a noisy machine)"
        print(f"\nRegression guard (issue 24): tiny shape fit - bare = {cpu:+.3f} CPU ms/step ({wall:+.3f} wall), "
              f"median of {len(tiny['fit'])} rounds; goal <= {FIT_OVER_BARE_MS} ms CPU/step: {verdict}")  # fmt: skip
    stages = rss["stages"]
    print("\n| fit, batch 128 | RSS MiB |\n|---|---:|")
    for label, grown in rss["imports"].items():
        print(f"| {'Python itself' if label == 'python' else 'import ' + label} | {'' if label == 'python' else '+'}"
              f"{grown:.0f} |")  # fmt: skip
    for name in ("imports", "cli_built", "data", "first_step", "peak"):
        print(f"| {name} | {stages.get(name, float('nan')):.0f} |")
    print(f"\nheavy modules loaded by the end of the fit: {', '.join(rss['loaded']) or 'none'}")


if __name__ == "__main__":
    main()
