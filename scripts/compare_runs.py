"""Runs configs over several seeds on the same data, then reads the runs back and writes a markdown table and a PNG.

A config is one YAML file or several applied in order (``base.yaml+overlay.yaml``, one ``--config`` each), named after
its last file. Every run is two subprocesses, ``python -m lightning_lstm fit --config <layer> ... --seed_everything
<seed>`` and ``python -m lightning_lstm test --config <run>/fit/config.yaml --ckpt_path <best checkpoint>``, logging to
``<out>/<name>/seed<k>/fit`` and ``.../test``. The numbers are then read back from those folders only: the
TensorBoard event files (EventAccumulator, every scalar kept) and the spike callback's ``spikes.json``.

Usage::

    python scripts/compare_runs.py                        # the 4 remedies, 3 seeds, into runs/remedies
    python scripts/compare_runs.py --configs a.yaml b.yaml --seeds 0,7 --max-epochs 5 --jobs 2
    python scripts/compare_runs.py --configs configs/default.yaml configs/default.yaml+my_overlay.yaml
    python scripts/compare_runs.py --override="--data.path=my.csv --data.target_columns=[load]"
    python scripts/compare_runs.py --reuse                # read existing runs again, train nothing new

Each subprocess gets ``OMP_NUM_THREADS=1`` unless the variable is set (``--threads`` changes it): on a small shared
CPU more threads per run cost far more CPU time than they save. Overrides may not touch a key on which the configs
differ (that would erase the comparison).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]
Layers = tuple[Path, ...]  # one config: YAML files applied in order (repeated --config)
REMEDIES = sorted((REPO / "configs" / "remedies").glob("[0-9]*.yaml"))
# Each remedy is an overlay on the previous ones: step k is configs/default.yaml + 01_vanilla.yaml + ... + step k.
DEFAULT_CONFIGS: list[Layers] = [(REPO / "configs" / "default.yaml", *REMEDIES[: k + 1]) for k in range(len(REMEDIES))]
OWN_KEYS = ("seed_everything", "trainer.logger")  # set per run by this script
LR_TAG = re.compile(r"lr(-\w+)?/weights")  # LearningRateMonitor: lr/weights, or lr-Adam/weights without a scheduler
# The README's tables were made when the training sampler shuffled epoch e with seed + e, where seeds 0 and 1 would see
# the same batches one epoch apart; seeds SEED_GAP apart shared no epoch order. It now seeds epoch e with (seed, e)
# (lightning_lstm/data/loaders.py); the gap stays so that the default seeds are those of the tables.
SEED_GAP = 1000


# -- running ----------------------------------------------------------------------------------------------------------
def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, object] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def parse_layers(text: str) -> Layers:
    """``"a.yaml+b.yaml"`` -> ``(a.yaml, b.yaml)``: the files of one config, applied in this order."""
    layers = tuple(Path(part) for part in text.split("+") if part)
    if not layers:
        raise argparse.ArgumentTypeError(f"--configs: a YAML file or files joined with '+', got {text!r}")
    return layers


def merged(layers: Layers) -> dict:
    """The YAML files of one config merged in order as --config merges them (a later value replaces a non-mapping)."""

    def merge(base: object, top: object) -> object:
        if not (isinstance(base, dict) and isinstance(top, dict)):
            return top
        return {**base, **{key: merge(base.get(key), value) for key, value in top.items()}}

    tree: object = {}
    for path in layers:
        tree = merge(tree, yaml.safe_load(path.read_text()) or {})
    return tree


def compared_keys(configs: list[Layers]) -> set[str]:
    """Keys whose values differ between the configs (a key missing from one config counts as different)."""
    flat = [flatten(merged(layers)) for layers in configs]
    keys = set().union(*flat)
    differ = {k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1}
    return {k for k in differ if not k.startswith(OWN_KEYS)}


def check_overrides(overrides: list[str], compared: set[str]) -> None:
    """Raise a ValueError when an override sets a key on which the configs differ, or one this script sets."""
    for token in overrides:
        if not token.startswith("--"):
            continue
        key = token[2:].split("=", 1)[0]
        if key.startswith(OWN_KEYS):
            raise ValueError(f"--override {token!r}: compare_runs.py sets {key} itself (use --seeds, --out)")
        clash = sorted(k for k in compared if k == key or k.startswith(key + ".") or key.startswith(k + "."))
        if clash:
            raise ValueError(f"--override {token!r} sets {clash}, on which the configs differ; drop it from --override")


def run_cli(args: list[str], log: Path, env: dict[str, str]) -> None:
    """One ``python -m lightning_lstm`` subprocess, its output in ``log``; raises with the log's tail on failure."""
    with log.open("w") as handle:
        result = subprocess.run(
            [sys.executable, "-m", "lightning_lstm", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    if result.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(args[:3])} ... failed (exit {result.returncode}); log {log}:\n{tail}")


def best_checkpoint(folder: Path) -> Path:
    """The ``best-*.ckpt`` of a fit (the newest if several), else ``last.ckpt`` (no finite val/loss was ever seen)."""
    best = sorted(folder.glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    return best[-1] if best else folder / "last.ckpt"


def train_and_test(
    config: Layers, seed: int, out: Path, extra: list[str], env: dict[str, str], reuse: bool, jobs: int
) -> Path:
    """Fit then test one (config, seed); returns the run folder ``<out>/<last layer's stem>/seed<seed>``.

    ``run.json`` in the folder records the two commands, the thread count and how many runs shared the machine.
    """
    name = config[-1].stem
    run = out / name / f"seed{seed}"
    finished = (run / "fit" / "spikes.json").is_file() and any((run / "test").glob("events.out.tfevents.*"))
    if reuse and finished:
        return run
    if run.exists():
        hint = "pass --reuse to read it back" if finished else "it is unfinished: delete it to train it again"
        raise FileExistsError(f"{run} exists: {hint}, or choose another --out")
    run.mkdir(parents=True)
    logger = [f"--trainer.logger.init_args.save_dir={out / name}", f"--trainer.logger.init_args.name={run.name}"]
    fit = [
        "fit",
        *(arg for layer in config for arg in ("--config", str(layer))),
        f"--seed_everything={seed}",
        *extra,
        *logger,
        "--trainer.logger.init_args.version=fit",
        "--trainer.enable_progress_bar=false",
    ]
    record = {"fit": fit, "omp_num_threads": env.get("OMP_NUM_THREADS"), "jobs": jobs, "cpus": os.cpu_count()}
    (run / "run.json").write_text(json.dumps(record, indent=2))
    run_cli(fit, run / "fit.log", env)
    ckpt = best_checkpoint(run / "fit" / "checkpoints")
    record["test"] = [
        "test",
        "--config",
        str(run / "fit" / "config.yaml"),
        f"--ckpt_path={ckpt}",
        "--trainer.logger.init_args.version=test",
    ]
    (run / "run.json").write_text(json.dumps(record, indent=2))
    run_cli(record["test"], run / "test.log", env)
    return run


# -- reading back -----------------------------------------------------------------------------------------------------
def scalars(folder: Path) -> tuple[dict[str, list[tuple[int, float, float]]], float]:
    """Every scalar of the event files in ``folder`` (tag -> [(step, value, wall_time)]) and the first event's time."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    tags = {tag: [(e.step, e.value, e.wall_time) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    return tags, events.FirstEventTimestamp()


def in_epoch_peak(loss: list[tuple[int, float, float]], epoch_ends: list[int]) -> float:
    """Median over the epochs after the first of max/median of the per-step loss inside the epoch (1 = flat).

    Scale-free, so it compares runs on raw and scaled data; the first epoch is left out because the fast initial
    descent, not a peak, makes its first steps the largest.
    """
    steps = np.array([s for s, _, _ in loss])
    values = np.array([v for _, v, _ in loss])
    ratios = []
    for start, end in zip(epoch_ends[:-1], epoch_ends[1:], strict=True):
        inside = values[(steps > start) & (steps <= end)]
        inside = inside[np.isfinite(inside)]
        if len(inside) >= 2 and np.median(inside) > 0:
            ratios.append(float(inside.max() / np.median(inside)))
    return float(np.median(ratios)) if ratios else math.nan


def epoch_repeat(loss: list[tuple[int, float, float]], epoch_ends: list[int]) -> float:
    """How much each epoch repeats the previous one's loss pattern: median correlation of consecutive epochs' profiles.

    A profile is the per-step loss of an epoch divided by a centred rolling median one epoch long (which removes the
    training trend but keeps anything that recurs within an epoch). About 1: the loss rises and falls at the same
    batches every epoch (a fixed data order, a small last batch); about 0: no pattern. The first epoch is left out.
    """
    steps = np.array([s for s, _, _ in loss])
    values = np.array([v for _, v, _ in loss])
    if len(epoch_ends) < 3 or not np.isfinite(values).all():
        return math.nan
    length = int(np.median(np.diff(epoch_ends)))
    trend = pd.Series(values).rolling(length, center=True, min_periods=1).median().to_numpy()
    ratio = values / np.where(trend > 0, trend, np.nan)
    profiles = [ratio[(steps > a) & (steps <= b)] for a, b in zip(epoch_ends[:-1], epoch_ends[1:], strict=True)]
    correlations = [
        float(np.corrcoef(p, q)[0, 1])
        for p, q in zip(profiles[:-1], profiles[1:], strict=True)
        if len(p) == len(q) >= 3 and np.isfinite(p).all() and np.isfinite(q).all() and p.std() > 0 and q.std() > 0
    ]
    return float(np.median(correlations)) if correlations else math.nan


@dataclass
class RunResult:
    config: str
    seed: int
    epochs: int
    steps: int
    spikes: int
    spikes_per_epoch: float
    epochs_with_spike: int
    last_batch_spikes: int
    largest_spike_score: float | None  # None: no spike
    in_epoch_peak: float
    epoch_repeat: float
    final_val_loss: float
    final_val_mae: float
    test_mae: float
    test_mae_vs_naive: float
    final_lr: float
    test_checkpoint: str
    wall_time_s: float


def read_run(run: Path) -> RunResult:
    """The numbers of one run, from its event files and spikes.json only."""
    (fit, fit_start), (test, _) = scalars(run / "fit"), scalars(run / "test")
    report = json.loads((run / "fit" / "spikes.json").read_text())
    spikes = report["spikes"]
    epoch_ends = [s for s, _, _ in fit.get("train/loss_epoch", [])]
    wall = [w for values in fit.values() for _, _, w in values]
    ckpt = yaml.safe_load((run / "test" / "config.yaml").read_text())["ckpt_path"]
    return RunResult(
        config=run.parent.name,
        seed=int(run.name.removeprefix("seed")),
        epochs=int(report["epochs"]),
        steps=int(report["total_steps"]),
        spikes=len(spikes),
        spikes_per_epoch=len(spikes) / max(int(report["epochs"]), 1),
        epochs_with_spike=len({int(s["epoch"]) for s in spikes}),
        last_batch_spikes=sum(
            s["batches_in_epoch"] is not None and s["batch_idx"] == s["batches_in_epoch"] - 1 for s in spikes
        ),
        largest_spike_score=max((float(s["score"]) for s in spikes), default=None),
        in_epoch_peak=in_epoch_peak(fit.get("train/loss_step", []), epoch_ends),
        epoch_repeat=epoch_repeat(fit.get("train/loss_step", []), epoch_ends),
        final_val_loss=fit["val/loss"][-1][1] if "val/loss" in fit else math.nan,
        final_val_mae=fit["val/mae"][-1][1] if "val/mae" in fit else math.nan,
        test_mae=test["test/mae"][-1][1],
        test_mae_vs_naive=test["test/mae_ratio_naive"][-1][1] if "test/mae_ratio_naive" in test else math.nan,
        final_lr=next((fit[t][-1][1] for t in sorted(fit) if LR_TAG.fullmatch(t)), math.nan),
        test_checkpoint=Path(ckpt).name,
        wall_time_s=max(wall) - fit_start,
    )


# -- reporting --------------------------------------------------------------------------------------------------------
COLUMNS = [  # (header, RunResult field)
    ("spikes / epoch", "spikes_per_epoch"),
    ("epochs with a spike", "epochs_with_spike"),
    ("largest spike score", "largest_spike_score"),
    ("spikes on an epoch's last batch ⁵", "last_batch_spikes"),
    ("in-epoch peak ¹", "in_epoch_peak"),
    ("epoch-to-epoch repeat ⁶", "epoch_repeat"),
    ("final val loss ²", "final_val_loss"),
    ("final val MAE ³", "final_val_mae"),
    ("test MAE ³", "test_mae"),
    ("test MAE / naive ⁴", "test_mae_vs_naive"),
    ("train wall time (s)", "wall_time_s"),
]

FOOTNOTES = [
    "A spike is a step whose training loss has a robust z-score (against the median and MAD of the previous "
    "`spikes.window` steps) of at least `spikes.threshold` (see `spikes.json` in each run folder). "
    "¹ Max / median of the per-step training loss within an epoch, median over the epochs after the first: "
    "1 is flat, 2 means the epoch's worst step doubled its typical loss. "
    "² The training loss on validation data in the units the network is trained in (raw units squared without "
    "a scaler): it does not compare across scalers; the MAEs do. "
    "³ On the original scale; test MAE from the best checkpoint (lowest val/loss). "
    "⁴ Test MAE over the MAE of repeating the last observed value on the same windows: below 1 beats it. "
    "⁵ Summed over the seeds, out of all their spikes; the last batch of an epoch is smaller than the others when the "
    "training windows do not fill it (`data.drop_last: false`). "
    "⁶ Correlation between consecutive epochs of the per-step loss divided by its rolling median (one epoch wide), "
    "median over the epochs after the first: near 1 when the loss rises and falls at the same batches every epoch, "
    "near 0 when nothing recurs.",
]


def fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}" if abs(value) < 1e5 else f"{value:.3e}"


def mean_spread(values: list[float | None]) -> str:
    """``mean ± std`` over seeds (sample std); values that are None (no spike) are counted apart."""
    present = [v for v in values if v is not None]
    if not present:
        return "none"
    finite = [v for v in present if math.isfinite(v)]
    if len(finite) < len(present):
        text = f"{fmt(max(present))} ({len(present) - len(finite)} non-finite)"
    elif len(finite) == 1:
        text = fmt(finite[0])
    else:
        spread = statistics.stdev(finite)
        text = f"{fmt(statistics.fmean(finite))} ± " + (f"{spread:.0f}" if spread >= 100 else f"{spread:.2g}")
    return text if len(present) == len(values) else f"{text} [{len(present)} of {len(values)} runs]"


def machine_note(runs: list[Path]) -> str:
    """How the runs shared the machine, from their ``run.json`` files."""
    records = [json.loads((run / "run.json").read_text()) for run in runs]
    settings = sorted({(r["omp_num_threads"], r["jobs"], r["cpus"]) for r in records}, key=str)
    parts = [f"OMP_NUM_THREADS={t}, {j} run(s) at a time on {c} CPUs" for t, j, c in settings]
    return f"Runs: {'; '.join(parts)}. Wall time: first to last event of the fit's event file."


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def summary_cell(rows: list[RunResult], field: str) -> str:
    """Mean ± std over the seeds; last-batch spikes as a share of all spikes."""
    if field == "last_batch_spikes":
        return f"{sum(r.last_batch_spikes for r in rows)} of {sum(r.spikes for r in rows)}"
    return mean_spread([getattr(r, field) for r in rows])


def markdown(results: list[RunResult], command: str, env_note: str) -> str:
    """The summary table (mean ± std per config), its footnotes, then one row per run."""
    headers = [h for h, _ in COLUMNS]
    lines = [
        f"<!-- written by: {command} -->",
        f"Mean ± standard deviation over seeds {sorted({r.seed for r in results})}. {env_note}",
        "",
        table_row(["config", *headers]),
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name in dict.fromkeys(r.config for r in results):
        rows = [r for r in results if r.config == name]
        lines.append(table_row([name, *(summary_cell(rows, field) for _, field in COLUMNS)]))
    per_run = ["config", "seed", "epochs", "steps", "spikes", *headers[1:], "final lr", "tested checkpoint"]
    lines += ["", *FOOTNOTES, "", "Per run:", "", table_row(per_run), "|---|" + "---:|" * (len(per_run) - 2) + "---|"]
    for r in results:
        values = [getattr(r, f) for _, f in COLUMNS[1:]] + [r.final_lr]
        cells = ["none" if v is None else fmt(v) for v in values]
        lines.append(
            table_row([r.config, str(r.seed), str(r.epochs), str(r.steps), str(r.spikes), *cells, r.test_checkpoint])
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[Path], path: Path) -> None:
    """One panel per config: every seed's per-step training loss (the first solid), its spikes, the epoch ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(run.parent.name for run in runs))
    fig, axes = plt.subplots(len(configs), 1, figsize=(11, 2.6 * len(configs)), squeeze=False)
    for ax, name in zip(axes[:, 0], configs, strict=True):
        for i, run in enumerate(r for r in runs if r.parent.name == name):
            fit = scalars(run / "fit")[0]
            steps, values = zip(*[(s, v) for s, v, _ in fit["train/loss_step"]], strict=True)
            first = i == 0
            ax.plot(steps, values, lw=0.8 if first else 0.6, alpha=1.0 if first else 0.4, color=f"C{i}", label=run.name)
            spikes = json.loads((run / "fit" / "spikes.json").read_text())["spikes"]
            if spikes:
                ax.scatter(
                    [s["global_step"] for s in spikes],
                    [s["loss"] for s in spikes],
                    marker="X",
                    s=40,
                    color=f"C{i}",
                    edgecolors="red",
                    linewidths=0.8,
                    zorder=3,
                )
            if first:
                for end, _, _ in fit.get("train/loss_epoch", []):
                    ax.axvline(end + 0.5, color="0.85", lw=0.5, zorder=0)
        ax.set_yscale("log")
        ax.set_title(name, loc="left", fontsize=10)
        ax.set_ylabel("train loss (step)")
        ax.legend(fontsize=7, loc="best", ncol=3)
    axes[-1, 0].set_xlabel(
        "global step (grey lines: epoch ends; X with a red edge: a detected spike, in its seed's colour)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- command line -----------------------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> seeds 0, 1000, 2000 (``SEED_GAP`` apart); ``"0,7,9"`` -> those seeds."""
    parts = [int(p) for p in text.split(",") if p.strip()]
    seeds = [SEED_GAP * i for i in range(parts[0])] if len(parts) == 1 and "," not in text else parts
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds: a count >= 1 or distinct comma-separated seeds, got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configs",
        nargs="+",
        type=parse_layers,
        default=DEFAULT_CONFIGS,
        help="configs in table order, each a YAML file or files joined with '+' (applied in order); "
        "default: the four remedies, each on configs/default.yaml and the steps before it",
    )
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=None,
        help=f"a count (3: seeds 0,{SEED_GAP},{2 * SEED_GAP}) or a list (0,7,9; one seed: 5,)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/remedies"), help="folder for the run folders")
    parser.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs of every config")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help='extra CLI arguments for every fit, e.g. --override="--data.path=x.csv" (repeatable)',
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: one seed and 2 epochs unless given")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (wall times get noisier above 1)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS per run (default: 1 unless set)")
    parser.add_argument("--reuse", action="store_true", help="read back finished runs in --out instead of failing")
    parser.add_argument("--table", type=Path, default=None, help="markdown file (default <out>/comparison.md)")
    parser.add_argument("--figure", type=Path, default=None, help="PNG file (default <out>/comparison.png)")
    args = parser.parse_args(argv)

    seeds = args.seeds or parse_seeds("1" if args.quick else "3")
    max_epochs = args.max_epochs or (2 if args.quick else None)
    configs = [tuple(path.resolve() for path in layers) for layers in args.configs]
    if len({c[-1].stem for c in configs}) != len(configs):
        parser.error("--configs: the last files' names (without .yaml) must differ; they name the run folders")
    extra = [token for text in args.override for token in shlex.split(text)]
    check_overrides(extra, compared_keys(configs))
    if max_epochs is not None:
        extra.append(f"--trainer.max_epochs={max_epochs}")
    out = args.out.resolve()
    env = dict(os.environ, PYTHONHASHSEED="0")
    if args.threads is not None or "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(args.threads or 1)

    started = time.perf_counter()
    jobs = [(config, seed) for config in configs for seed in seeds]
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        futures = [pool.submit(train_and_test, c, s, out, extra, env, args.reuse, args.jobs) for c, s in jobs]
        try:
            runs = [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # runs already started finish; no new ones start
            raise
    results = [read_run(run) for run in runs]

    command = "python scripts/compare_runs.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    env_note = machine_note(runs)
    table, figure = args.table or out / "comparison.md", args.figure or out / "comparison.png"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(markdown(results, command, env_note))
    (out / "runs.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    plot(runs, figure)
    print(table.read_text())
    print(f"table {table}, figure {figure}, {len(runs)} runs in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
