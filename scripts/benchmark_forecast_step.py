"""Per-step training time of the forecast recipe against a plain config of the same shape (issue 23's goal: within
1.1x of the time before its inputs).

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/benchmark_forecast_step.py --rounds 5

Every arm fits Taylor's hourly demand with ``configs/electricity_hourly.yaml`` at its shape (lookback 168, horizon 24,
LSTM 32 x 2, batch 64) and differs only in issue 23's inputs: ``plain`` has the calendar (it predates issue 23) and
neither seasonal lags, residual, quantiles nor a window scaling; ``recipe`` is the shipped config (lags [24, 168], the
residual over the seasonal naive, ``data.window_norm: standard``); ``recipe + quantiles`` adds ``model.quantiles
[0.1, 0.5, 0.9]``. Each run is a fresh interpreter
on one thread; the arms alternate and their order rotates each round. A run times its training steps from the first
batch start to the last batch end of epochs 2 and 3 (validation, which holds the interval calibration, lies outside),
in wall and in process CPU time; the table gives the medians over rounds and the ratio to ``plain``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "electricity_hourly.yaml"
DATA = REPO / "tests" / "fixtures" / "taylor_electricity_halfhourly.csv"
ARMS = {
    "plain": ["--data.seasonal_lags=[]", "--model.residual=none", "--model.quantiles=null", "--data.window_norm=none"],
    "recipe": ["--model.quantiles=null"],
    "recipe + quantiles": ["--model.quantiles=[0.1, 0.5, 0.9]"],
}
EPOCHS, BATCHES = 3, 30


def child(arm: str, root: str, flush_denormal: bool = False) -> dict:
    """Fit ``arm`` in this process; the time per training step of the epochs after the first."""
    import lightning.pytorch as pl
    import torch

    torch.set_flush_denormal(flush_denormal)

    sys.path.insert(0, str(REPO))
    from lightning_lstm.cli import build_cli

    class StepTimer(pl.Callback):
        def __init__(self) -> None:
            self.epochs: list[tuple[float, float, int]] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if batch_idx == 0:
                self.start, self.steps = (time.perf_counter(), time.process_time()), 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.steps += 1
            self.end = (time.perf_counter(), time.process_time())

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.epochs.append((self.end[0] - self.start[0], self.end[1] - self.start[1], self.steps))

    args = ["--config", str(CONFIG), f"--data.path={DATA}", f"--trainer.default_root_dir={root}"]
    args += [f"--trainer.logger.init_args.save_dir={root}", "--trainer.enable_progress_bar=false"]
    args += ["--trainer.enable_model_summary=false", "--forecast_plot.every_n_epochs=0"]
    args += [f"--trainer.max_epochs={EPOCHS}", f"--trainer.limit_train_batches={BATCHES}", *ARMS[arm]]
    cli = build_cli(args, run=False)
    timer = StepTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    later = timer.epochs[1:]
    steps = sum(n for _, _, n in later)
    return {"wall_ms": 1e3 * sum(w for w, _, _ in later) / steps, "cpu_ms": 1e3 * sum(c for _, c, _ in later) / steps}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True) in every run: float32 values below 1.2e-38 become 0 (on the CPU, "
        "arithmetic on such subnormal values is many times slower, and how many a fit meets depends on its weights)",
    )
    parser.add_argument("--child", choices=list(ARMS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        with tempfile.TemporaryDirectory(prefix="forecast-step-") as root:
            print(json.dumps(child(args.child, root, args.flush_denormal)))
        return ""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    names, runs = list(ARMS), {arm: [] for arm in ARMS}
    for r in range(args.rounds):
        for arm in names[r % len(names) :] + names[: r % len(names)]:  # the order rotates each round
            command = [sys.executable, __file__, "--child", arm, *(["--flush-denormal"] if args.flush_denormal else [])]
            done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, check=True)
            runs[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {arm}: {runs[arm][-1]}", file=sys.stderr, flush=True)
    median = {arm: {k: statistics.median(run[k] for run in runs[arm]) for k in ("wall_ms", "cpu_ms")} for arm in ARMS}
    lines = [
        f"Per training step, median of {args.rounds} fresh processes per arm (lookback 168, horizon 24, LSTM 32 x 2, "
        f"batch 64; one thread; epochs 2-{EPOCHS} of {BATCHES} steps; flush denormals: {args.flush_denormal}):",
        "",
        "| arm | wall ms/step | CPU ms/step | wall x plain | CPU x plain |",
        "|---|---:|---:|---:|---:|",
    ]
    for arm, m in median.items():
        ratio = {k: m[k] / median["plain"][k] for k in m}
        lines.append(
            f"| {arm} | {m['wall_ms']:.2f} | {m['cpu_ms']:.2f} | {ratio['wall_ms']:.3f} | {ratio['cpu_ms']:.3f} |"
        )
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
