"""Does the doctor name the right cause, stay quiet on healthy runs, find the bad values, and fix the spikes?

Runs the doctor (probe, diagnosis, candidate remedies, ranking) on every scenario of scripts/diagnosis_scenarios.py
with several seeds and writes one table: the cause named first, advice on healthy controls, precision and recall of
the named timestamps against the injected ones, the fix rate (the winner removes >= 90% of the probe's spikes without
worsening validation MAE by more than 2%; for unscaled data, which makes no spikes, it must lower the MAE) and each
fix's validation-MAE change.

Run from the repository root::

    python -m scripts.benchmark_diagnosis                       # 16 scenarios x 3 seeds, ~20-30 min on 2 cores
    python -m scripts.benchmark_diagnosis --quick               # 2 scenarios, 1 seed, 3 epochs: a pipeline check
    python -m scripts.benchmark_diagnosis --scenarios co2_level_shift --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from lightning_lstm.doctor import DoctorOptions, run_doctor
from lightning_lstm.doctor.config import apply_overlay, set_key
from scripts.diagnosis_scenarios import QUICK, REPO, SCENARIOS, Scenario, base_config, build

SEEDS = (0, 1000, 2000)  # far apart: the training sampler's epoch orders of nearby seeds overlap


def named_times(summary: dict) -> set[str]:
    """Timestamps the diagnosis names in findings that give advice."""
    return {
        a["time"].removesuffix(" 00:00:00")
        for f in summary["findings"]
        if f.get("advice")
        for a in f.get("anomalies", [])
    }


def score_run(scenario: Scenario, seed: int, summary: dict, truth: list[str]) -> dict:
    """One row of the per-run results."""
    causes = [f["cause"] for f in summary["findings"] if f.get("advice")]
    first = causes[0] if causes else None
    probe_spikes = len(summary["probe"]["spikes"])
    after = summary["winner_spikes"]
    base, fixed_mae = summary["probe_val_mae"], summary["winner_val_mae"]
    change = fixed_mae / base - 1 if fixed_mae is not None and base else None
    if scenario.cause is None:
        fixed = None
    elif probe_spikes == 0:
        fixed = change is not None and change < -0.02
    else:
        fixed = after is not None and after <= 0.1 * probe_spikes and (change is None or change <= 0.02)
    return {
        "scenario": scenario.name,
        "seed": seed,
        "expected": scenario.cause,
        "first": first,
        "causes": causes,
        "right": first == scenario.cause,
        "advice": bool(causes),
        "named": sorted(named_times(summary)),
        "truth": truth,
        "probe_spikes": probe_spikes,
        "after_spikes": after,
        "winner": summary["winner"],
        "fixed": fixed,
        "mae_change": change,
        "wall_s": summary["wall_s"],
        "estimate_s": summary["estimate_s"],
        "candidates": len(summary["candidates"]),
        "error": summary.get("error"),
    }


def failed_summary(error: str) -> dict:
    """The summary of a doctor run that failed: no finding, no winner (scored as wrong and unfixed)."""
    print(f"doctor failed: {error}", flush=True)
    empty = {"spikes": [], "anomalies": [], "wall_s": 0.0}
    return {
        "findings": [],
        "probe": empty,
        "winner": None,
        "winner_spikes": None,
        "probe_val_mae": None,
        "winner_val_mae": None,
        "wall_s": 0.0,
        "estimate_s": 0.0,
        "candidates": [],
        "error": error,
    }


def _pct(values: list[bool]) -> str:
    return f"{sum(values)}/{len(values)} ({sum(values) / len(values):.0%})" if values else "n/a"


def table(rows: list[dict], seeds: list[int], wall: float) -> str:
    """The markdown table: one line per scenario, then the goals."""
    lines = [
        "| scenario | injected cause | expected | named first (per seed) | right | spikes before -> after | fixed "
        "| val MAE change of the fix | doctor wall s |",
        "|---|---|---|---|---:|---|---:|---|---:|",
    ]
    for scenario in SCENARIOS:
        mine = [r for r in rows if r["scenario"] == scenario.name]
        if not mine:
            continue
        changes = ", ".join("-" if r["mae_change"] is None else f"{r['mae_change']:+.1%}" for r in mine)
        spikes = ", ".join(
            f"{r['probe_spikes']}->{'-' if r['after_spikes'] is None else r['after_spikes']}" for r in mine
        )
        fixed = "n/a" if scenario.cause is None else _pct([bool(r["fixed"]) for r in mine])
        lines.append(
            f"| {scenario.name} | {scenario.what} | {scenario.cause or 'none (healthy)'} | "
            f"{', '.join(r['first'] or 'none' for r in mine)} | {_pct([r['right'] for r in mine])} | {spikes} | "
            f"{fixed} | {changes} | {statistics.mean(r['wall_s'] for r in mine):.0f} |"
        )
    causal = [r for r in rows if r["expected"] is not None]
    healthy = [r for r in rows if r["expected"] is None]
    named = sum(len(r["named"]) for r in rows)
    hits = sum(len(set(r["named"]) & set(r["truth"])) for r in rows)
    truths = sum(len(r["truth"]) for r in rows)
    worse = [r["mae_change"] for r in causal if r["fixed"] is not None and r["mae_change"] is not None]
    lines += [
        "",
        "| goal | target | reached |",
        "|---|---|---|",
        f"| cause named first | >= 90% of runs | {_pct([r['right'] for r in causal])} |",
        f"| advice on healthy controls | none | {sum(r['advice'] for r in healthy)} of {len(healthy)} runs |",
        f"| localisation precision (named timestamps that were injected, all runs) | >= 0.9 | "
        f"{hits / named if named else float('nan'):.2f} ({hits} of {named}) |",
        f"| localisation recall (injected timestamps named) | >= 0.9 | "
        f"{hits / truths if truths else float('nan'):.2f} ({hits} of {truths}) |",
        f"| fix rate | >= 90% | {_pct([bool(r['fixed']) for r in causal])} |",
        f"| worst val-MAE change of a winning fix | <= +2% | {max(worse):+.1%} |"
        if worse
        else "| worst change | | n/a |",
        "",
        f"{len(rows)} doctor runs ({len(causal)} with a cause, {len(healthy)} healthy), seeds {seeds}, in "
        f"{wall / 60:.1f} min on {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), 2 runs at a "
        "time, one torch thread each; the machine was shared, so wall times are upper bounds.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "benchmark_diagnosis")
    parser.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    parser.add_argument("--scenarios", nargs="*", default=None)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=list(SEEDS))
    parser.add_argument("--quick", action="store_true", help=f"{QUICK}, one seed, 3 epochs")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    names = QUICK if args.quick else args.scenarios or [s.name for s in SCENARIOS]
    seeds = args.seeds[:1] if args.quick else args.seeds
    unknown = sorted(set(names) - {s.name for s in SCENARIOS})
    if unknown:
        parser.error(f"unknown scenarios {unknown}")
    start, rows, bases = time.perf_counter(), [], {}
    for scenario in [s for s in SCENARIOS if s.name in names]:
        base = bases.setdefault(scenario.series, base_config(scenario.series))
        overlay, truth = build(scenario, base, args.out / "data")
        for seed in seeds:
            config = apply_overlay(base, overlay)
            set_key(config, "seed_everything", seed)
            options = DoctorOptions(
                out_dir=str(args.out / f"{scenario.name}_s{seed}"),
                jobs=args.jobs,
                probe_epochs=3 if args.quick else None,
            )
            print(f"== {scenario.name} seed {seed}: {scenario.what}", flush=True)
            try:
                summary = run_doctor(config, options, echo=lambda line: None, command=scenario.name)
            except Exception as error:  # noqa: BLE001 - a failed doctor run counts as wrong and unfixed
                summary = failed_summary(repr(error))
            rows.append(score_run(scenario, seed, summary, truth))
            print(
                json.dumps(
                    {
                        k: rows[-1][k]
                        for k in (
                            "first",
                            "right",
                            "probe_spikes",
                            "after_spikes",
                            "winner",
                            "fixed",
                            "mae_change",
                            "wall_s",
                        )
                    },
                    default=str,
                ),
                flush=True,
            )
    text = table(rows, seeds, time.perf_counter() - start)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    (args.out / "table.md").write_text(text)
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text("# Diagnosis benchmark\n\nWritten by `python -m scripts.benchmark_diagnosis`.\n\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
