"""Evidence for issues 8 and 9: ``fit`` against a plain PyTorch loop, DataLoader throughput, peak RSS, spike-hook cost.

Prints ONE markdown table (and the machine it ran on) from one run::

    python scripts/benchmark.py            # the full run: about 7-12 minutes on 2 quiet cores
    python scripts/benchmark.py --quick    # tiny sizes, about 2 minutes: checks that every part works

Every measurement runs in a fresh interpreter (``--child``), so "untuned" really is a process that never called
``mallopt``; the arms of part (a) are launched alternately, their order rotated each round, and medians reported.

(a) Time per epoch and windows/s, LSTMRegressor (LSTM 64 x 2, 8 features, lookback 64, horizon 1), batch 256, AdamW
    (lr 3e-3, weight decay 0.01 on matrices only), gradient-norm clipping at 1.0, the same train DataLoader
    (``TimeSeriesDataModule`` over a synthetic ``.npy`` series, shuffled), the same thread count and
    ``torch.use_deterministic_algorithms(True)`` (the default config's ``trainer.deterministic``), in four arms:

    * ``plain loop``: ``for batch in loader: zero_grad, forward, MSE, backward, clip_grad_norm_, step``.
    * ``plain loop + allocator tuning``: the same after ``lightning_lstm.runtime.tune_allocator()``, and like the CLI
      with ``torch.utils.deterministic.fill_uninitialized_memory = False`` (``runtime.fill_uninitialized_memory``).
    * ``lightning_lstm fit`` / ``+ allocator tuning``: ``lightning_lstm.cli.build_cli(..., run=False)`` on
      ``configs/default.yaml`` (``--runtime.malloc_tuning`` false / true), then ``trainer.fit``. Included: the
      Trainer's loop and hooks, the epoch-mean training loss, step loss and grad norm logged to TensorBoard every
      ``trainer.log_every_n_steps`` (10), the LR monitor, the loss-spike callback with its defaults (a decision
      every step), ``ModelCheckpoint``'s per-step check, clipping. Off: validation (``data.val_fraction=0``),
      checkpoint files (``save_top_k=0``, ``save_last=false``), progress bar, model summary, sanity check, LR
      scheduler.

    Epoch 0 is a warm-up and not counted. CPU s/epoch (user + system, all threads) and minor page faults per epoch
    are ``getrusage`` deltas in the process that trained; peak RSS is its ``VmHWM``. The ratio column divides each
    arm's time per epoch by the tuned plain loop's (issue 9: fit <= 1.05).
(b) The train DataLoader alone (batches built and discarded): windows/s, and the share of the tuned plain loop's
    epoch it accounts for (``num_workers=0``: loading runs inside the step).
(c) Peak RSS (``VmHWM`` of a fresh process, allocator tuning on as in the CLI) after building the DataModule, its
    three datasets and three batches of each, for series of 1e5, 1e6 and 1e7 rows (8 float32 columns, ``.npy``).
    Linear in the series means a constant number of bytes per row; materialised windows would cost
    ``windows x lookback x features x 4`` bytes, shown beside it.
(d) The loss-spike callback's own time per step (its hooks timed inside the tuned fit arm; it includes computing the
    gradient norm, which the module then reuses for logging), and the tuned fit without the callback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURES, LOOKBACK, HORIZON, BATCH, HIDDEN, LAYERS = 8, 64, 1, 256, 64, 2
LR, WEIGHT_DECAY, CLIP = 3e-3, 0.01, 1.0
TEST_FRACTION = 0.02
ARMS = {
    "plain": "plain loop",
    "plain_tuned": "plain loop + allocator tuning",
    "fit": "lightning_lstm fit",
    "fit_tuned": "lightning_lstm fit + allocator tuning",
    "fit_tuned_nospikes": "fit + tuning, spike callback removed",
}
QUICK_NOTE = " (--quick: sizes far too small for the numbers to mean anything)"


# -- data ---------------------------------------------------------------------------------------------------------
def write_series(path: Path, rows: int) -> Path:
    """``rows`` x 8 float32 of noisy sines with different periods, written in chunks (the 1e7 case is 320 MB)."""
    import numpy as np

    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, FEATURES))
    rng = np.random.default_rng(0)
    periods = np.array([24, 168, 50, 7, 365, 12, 90, 30], dtype=np.float64)
    for begin in range(0, rows, 1_000_000):
        t = np.arange(begin, min(rows, begin + 1_000_000), dtype=np.float64)[:, None]
        block = np.sin(2 * np.pi * t / periods) + 0.1 * rng.standard_normal((len(t), FEATURES))
        out[begin : begin + len(t)] = block
    out.flush()
    del out
    return path


def rows_for(windows: int) -> int:
    """Rows whose training span (all but the test fraction) holds about ``windows`` windows."""
    return int((windows + LOOKBACK + HORIZON) / (1 - TEST_FRACTION)) + 1


def data_options(path: Path) -> dict:
    return {
        "path": str(path),
        "time_column": None,
        "target_columns": ["0"],
        "feature_columns": [str(i) for i in range(FEATURES)],
        "lookback": LOOKBACK,
        "horizon": HORIZON,
        "val_fraction": 0.0,
        "test_fraction": TEST_FRACTION,
        "window_norm": "none",
        "batch_size": BATCH,
        "shuffle": True,
        "missing": "error",
    }


def datamodule(path: Path):
    from lightning_lstm.data.datamodule import TimeSeriesDataModule

    dm = TimeSeriesDataModule(**data_options(path))
    dm.setup("fit")
    return dm


# -- measurements in a child process ----------------------------------------------------------------------------
def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def peak_rss_mib() -> float:
    """This process's peak RSS. ``ru_maxrss`` would not do: Linux carries the parent's peak over ``fork`` + ``exec``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def heap_keeps_large_blocks() -> bool | None:
    """Whether a 48 MiB malloc is served from the heap now, i.e. whether the allocator tuning is in effect."""
    from lightning_lstm.runtime.allocator import _large_block_in_heap, _load_glibc

    loaded = _load_glibc()
    return None if isinstance(loaded, str) else _large_block_in_heap(loaded[0])


def summarise(
    times: list[float], minflts: list[int], cpu: list[float], windows: int, extra: dict | None = None
) -> dict:
    counted = times[1:] or times  # epoch 0 is the warm-up
    counted_faults = minflts[1:] or minflts
    return {
        "epoch_s": statistics.median(counted),
        "epoch_times": times,
        "epoch_minflt": minflts,
        "epoch_cpu": cpu,
        "cpu_s": statistics.median(cpu[1:] or cpu),  # user + system CPU of the whole process (all threads)
        "windows": windows,
        "windows_per_s": windows / statistics.median(counted),
        "minflt_per_epoch": statistics.median(counted_faults),
        "maxrss_mib": peak_rss_mib(),
        "tuned": heap_keeps_large_blocks(),
        **(extra or {}),
    }


def child_plain(path: Path, epochs: int, threads: int, tuned: bool) -> dict:
    import torch

    from lightning_lstm.model.param_groups import weight_decay_groups
    from lightning_lstm.model.regressor import LSTMRegressor
    from lightning_lstm.runtime import tune_allocator

    if tuned:
        report = tune_allocator(True)
        assert report.applied, report.describe()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)  # as configs/default.yaml's trainer.deterministic
    # The tuned loop gets all of the CLI's runtime settings (apply_runtime): no NaN fill of new tensors either.
    torch.utils.deterministic.fill_uninitialized_memory = not tuned
    torch.set_flush_denormal(tuned)  # and subnormal floats flushed to zero
    torch.manual_seed(42)
    loader = datamodule(path).train_dataloader()
    model = LSTMRegressor(FEATURES, 1, HORIZON, HIDDEN, LAYERS).train()
    optimizer = torch.optim.AdamW(weight_decay_groups(model), lr=LR, weight_decay=WEIGHT_DECAY)
    times, minflts, cpu = [], [], []
    for _ in range(epochs):
        f0, t0, c0 = faults(), time.perf_counter(), time.process_time()
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
        times.append(time.perf_counter() - t0)
        minflts.append(faults() - f0)
        cpu.append(time.process_time() - c0)
    return summarise(times, minflts, cpu, len(loader.dataset), {"final_loss": float(loss.detach())})


def fit_args(path: Path, root: Path, epochs: int, threads: int, tuned: bool) -> list[str]:
    options = data_options(path)
    columns = json.dumps(options["feature_columns"])
    return [
        "--config",
        str(REPO / "configs" / "default.yaml"),
        f"--trainer.max_epochs={epochs}",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",
        f"--trainer.gradient_clip_val={CLIP}",
        f"--model.hidden_size={HIDDEN}",
        f"--model.num_layers={LAYERS}",
        "--model.scheduler=null",
        f"--model.optimizer.init_args.lr={LR}",
        f"--model.optimizer.init_args.weight_decay={WEIGHT_DECAY}",
        f"--data.path={path}",
        "--data.time_column=null",
        '--data.target_columns=["0"]',
        f"--data.feature_columns={columns}",
        f"--data.lookback={LOOKBACK}",
        f"--data.horizon={HORIZON}",
        "--data.val_fraction=0",
        f"--data.test_fraction={TEST_FRACTION}",
        "--data.window_norm=none",
        f"--data.batch_size={BATCH}",
        "--data.missing=error",
        "--checkpoint.save_top_k=0",
        "--checkpoint.save_last=false",
        "--forecast_plot.every_n_epochs=0",
        f"--runtime.malloc_tuning={str(tuned).lower()}",
        f"--runtime.num_threads={threads}",
    ]


def child_fit(path: Path, epochs: int, threads: int, tuned: bool, spikes: bool, profile: str | None) -> dict:
    import lightning.pytorch as pl

    from lightning_lstm.callbacks.idle_hooks import STEP_HOOKS
    from lightning_lstm.cli import build_cli
    from lightning_lstm.spikes import LossSpikeCallback

    class EpochTimer(pl.Callback):
        """Wall time, CPU time and minor faults per epoch; the time inside the spike callback's step hooks."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self.minflts: list[int] = []
            self.cpu: list[float] = []
            self.hook_s: dict[str, float] = {}
            self.steps = 0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._f0, self._t0, self._c0 = faults(), time.perf_counter(), time.process_time()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.times.append(time.perf_counter() - self._t0)
            self.minflts.append(faults() - self._f0)
            self.cpu.append(time.process_time() - self._c0)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.steps += 1

        def wrap(self, callback: pl.Callback) -> None:
            name = type(callback).__name__
            self.hook_s.setdefault(name, 0.0)
            for hook in STEP_HOOKS:
                if getattr(type(callback), hook) is getattr(pl.Callback, hook):
                    continue  # not overridden: Lightning's no-op
                original = getattr(callback, hook)

                def timed(*args, _original=original, _name=name, **kwargs):
                    start = time.perf_counter()
                    try:
                        return _original(*args, **kwargs)
                    finally:
                        self.hook_s[_name] += time.perf_counter() - start

                setattr(callback, hook, timed)

    with tempfile.TemporaryDirectory() as root:
        cli = build_cli(fit_args(path, Path(root), epochs, threads, tuned), run=False)
        trainer = cli.trainer
        if not spikes:
            trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, LossSpikeCallback)]
        timer = EpochTimer()
        for callback in trainer.callbacks:
            if isinstance(callback, LossSpikeCallback) or os.environ.get("BENCHMARK_TIME_ALL_CALLBACKS"):
                timer.wrap(callback)
        trainer.callbacks.append(timer)
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        trainer.fit(cli.model, datamodule=cli.datamodule)
        if profile:
            profiler.disable()
            profiler.dump_stats(profile)
        windows = len(trainer.train_dataloader.dataset)
        per_step_us = {name: 1e6 * s / max(timer.steps, 1) for name, s in timer.hook_s.items()}
        extra = {"hook_us_per_step": per_step_us, "steps": timer.steps}
        return summarise(timer.times, timer.minflts, timer.cpu, windows, extra)


def child_loader(path: Path, epochs: int, threads: int) -> dict:
    import torch

    from lightning_lstm.runtime import tune_allocator

    tune_allocator(True)
    torch.set_num_threads(threads)
    loader = datamodule(path).train_dataloader()
    times, minflts, cpu = [], [], []
    for _ in range(epochs):
        f0, t0, c0 = faults(), time.perf_counter(), time.process_time()
        for _batch in loader:
            pass
        times.append(time.perf_counter() - t0)
        minflts.append(faults() - f0)
        cpu.append(time.process_time() - c0)
    return summarise(times, minflts, cpu, len(loader.dataset))


def child_rss(path: Path) -> dict:
    import numpy as np

    from lightning_lstm.runtime import tune_allocator

    tune_allocator(True)
    import torch  # noqa: F401  (imported before the baseline so that it is part of it)

    from lightning_lstm.data.datamodule import TimeSeriesDataModule  # noqa: F401

    baseline = peak_rss_mib()
    dm = datamodule(path)
    windows = 0
    for loader in (dm.train_dataloader(), dm.test_dataloader()):
        windows += len(loader.dataset)
        for _, _batch in zip(range(3), loader, strict=False):
            pass
    rows = int(np.load(path, mmap_mode="r").shape[0])
    peak = peak_rss_mib()
    return {"rows": rows, "windows": windows, "baseline_mib": baseline, "maxrss_mib": peak}


# -- the parent: launch, alternate, tabulate -----------------------------------------------------------------------
def launch(kind: str, path: Path, args: argparse.Namespace, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.pop("LIGHTNING_LSTM_MALLOC_TUNING", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--child", kind, "--data", str(path), "--epochs", str(args.epochs)]
    command += ["--threads", str(args.threads)]
    for key, value in extra.items():
        command += [f"--{key}", value]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    import torch

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from lightning_lstm.runtime import available_cpus

    libc = " ".join(platform.libc_ver()) or "unknown libc"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {available_cpus()} usable CPUs, {platform.system()} {platform.release()}, {libc}, Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average at the start {load:.1f}"
    )


def med(runs: list[dict], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def table(results: dict[str, list[dict]], loader: list[dict], rss: list[dict], args: argparse.Namespace) -> str:
    base = med(results["plain_tuned"], "epoch_s")
    lines = [
        "| part | measurement | windows/s | s/epoch (min-max) | CPU s/epoch | x tuned plain loop | minor faults/epoch "
        "| peak RSS MiB | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for arm, runs in results.items():
        epochs = [float(r["epoch_s"]) for r in runs]
        note = "tuning in effect: " + "/".join(sorted({str(r["tuned"]) for r in runs}))
        if arm.startswith("fit"):
            note += f"; {runs[0]['steps'] // args.epochs} steps/epoch"
        lines.append(
            f"| {'d' if arm == 'fit_tuned_nospikes' else 'a'} | {ARMS[arm]} | {med(runs, 'windows_per_s'):,.0f} "
            f"| {statistics.median(epochs):.2f} ({min(epochs):.2f}-{max(epochs):.2f}) | {med(runs, 'cpu_s'):.2f} "
            f"| {statistics.median(epochs) / base:.3f} | {med(runs, 'minflt_per_epoch'):,.0f} "
            f"| {med(runs, 'maxrss_mib'):.0f} | {note} |"
        )
    loader_s, loader_rate = med(loader, "epoch_s"), med(loader, "windows_per_s")
    lines.append(
        f"| b | train DataLoader alone (batch {BATCH}, num_workers=0) | {loader_rate:,.0f} | {loader_s:.2f} "
        f"| {med(loader, 'cpu_s'):.2f} | - | {med(loader, 'minflt_per_epoch'):,.0f} | {med(loader, 'maxrss_mib'):.0f} "
        f"| {100 * loader_s / base:.1f}% of the tuned plain loop's epoch; feeds "
        f"{loader_rate / med(results['plain_tuned'], 'windows_per_s'):.0f}x the rate training consumes |"
    )
    previous = None
    for r in rss:
        grown = r["maxrss_mib"] - r["baseline_mib"]
        materialised = r["windows"] * LOOKBACK * FEATURES * 4 / 2**20
        slope = ""
        if previous is not None:
            slope = f"; {(grown - previous[1]) * 2**20 / (r['rows'] - previous[0]):.0f} B per added row"
        previous = (r["rows"], grown)
        lines.append(
            f"| c | DataModule + datasets + 3 batches, {r['rows']:,} rows x {FEATURES} | - | - | - | - | - "
            f"| {r['maxrss_mib']:.0f} | +{grown:.0f} MiB over the {r['baseline_mib']:.0f} MiB after imports{slope}; "
            f"materialised windows would take {materialised:,.0f} MiB |"
        )
    if "fit_tuned" in results:
        runs = results["fit_tuned"]
        step_us = 1e6 * med(runs, "epoch_s") / (runs[0]["steps"] / args.epochs)
        spikes_us = statistics.median(r["hook_us_per_step"].get("LossSpikeCallback", 0.0) for r in runs)
        lines.append(
            f"| d | loss-spike callback's step hooks, timed inside the tuned fit | - | - | - | - | - | - "
            f"| {spikes_us:,.0f} us/step = {100 * spikes_us / step_us:.2f}% of a {step_us / 1000:.1f} ms step (grad "
            "norm, detector reading 32 steps at a time; scalars every log_every_n_steps) |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from lightning_lstm.runtime import available_cpus

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes to check the script (numbers meaningless)")
    parser.add_argument("--windows", type=int, default=20_000, help="training windows per epoch for (a), (b), (d)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is a warm-up")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every arm in (a) and (d)")
    parser.add_argument("--rss-rows", default="1e5,1e6,1e7", help="series lengths for (c)")
    parser.add_argument("--threads", type=int, default=available_cpus(), help="torch threads in every arm")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"subset of {list(ARMS)} (plain_tuned is required)")
    parser.add_argument("--profile", help="write a cProfile of one tuned fit child to this file and exit")
    parser.add_argument("--child", choices=[*ARMS, "loader", "rss"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.windows, args.epochs, args.rounds, args.rss_rows = 2_000, 2, 1, "1e4,1e5,1e6"
    return args


def run_child(args: argparse.Namespace) -> dict:
    path = Path(args.data)
    if args.child == "loader":
        return child_loader(path, args.epochs, args.threads)
    if args.child == "rss":
        return child_rss(path)
    if args.child.startswith("plain"):
        return child_plain(path, args.epochs, args.threads, tuned=args.child == "plain_tuned")
    tuned = args.child != "fit"
    return child_fit(
        path, args.epochs, args.threads, tuned, spikes=args.child != "fit_tuned_nospikes", profile=args.profile
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if "plain_tuned" not in arms or set(arms) - set(ARMS):
        raise SystemExit(f"--arms must include plain_tuned and only {list(ARMS)}")
    header = machine()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        data = write_series(Path(folder) / "series.npy", rows_for(args.windows))
        if args.profile:
            launch("fit_tuned", data, args, profile=str(Path(args.profile).resolve()))
            print(f"profile written to {args.profile}")
            return
        results: dict[str, list[dict]] = {arm: [] for arm in arms}
        loader: list[dict] = []
        for round_index in range(args.rounds):
            shift = round_index % len(arms)
            for arm in arms[shift:] + arms[:shift]:
                results[arm].append(launch(arm, data, args))
                print(f"round {round_index + 1} {arm}: {results[arm][-1]['epoch_s']:.2f} s/epoch", file=sys.stderr)
            loader.append(launch("loader", data, args))
        rss = []
        for rows in (int(float(r)) for r in args.rss_rows.split(",")):
            series = write_series(Path(folder) / f"rss_{rows}.npy", rows)
            rss.append(launch("rss", series, args))
            series.unlink()
            print(f"rss {rows}: {rss[-1]['maxrss_mib']:.0f} MiB", file=sys.stderr)
    windows = results["plain_tuned"][0]["windows"]
    print(
        f"Machine: {header}.\n\nLSTM {HIDDEN} x {LAYERS}, {FEATURES} features, lookback {LOOKBACK}, batch {BATCH}, "
        f"{windows:,} training windows per epoch, {args.threads} torch thread(s); medians of {args.rounds} "
        f"alternating round(s) of {args.epochs} epochs each (epoch 0 not counted); the whole run took "
        f"{(time.perf_counter() - started) / 60:.1f} min{QUICK_NOTE if args.quick else ''}.\n"
    )
    print(table(results, loader, rss, args))
    print(
        "\nfit arms: configs/default.yaml through lightning_lstm.cli.build_cli(run=False), then trainer.fit; on: "
        "TensorBoard logging every 10 steps, LR monitor, loss-spike callback (defaults), ModelCheckpoint's per-step "
        "check, clipping at 1.0; off: validation, checkpoint files, progress bar, model summary, sanity check, LR "
        "scheduler. Plain loops: the same model, DataLoader, AdamW groups and clipping, hand-written."
    )


if __name__ == "__main__":
    main()
