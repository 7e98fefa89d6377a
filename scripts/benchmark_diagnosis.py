"""Does the doctor name the right cause, stay quiet on healthy runs, find the bad values, and fix the spikes?

Runs the doctor (probe, diagnosis, candidate remedies, ranking) on every scenario of scripts/diagnosis_scenarios.py
(CO2 and glucose, written with the rules), scripts/diagnosis_real_scenarios.py (12 real series) and
scripts/diagnosis_held_out_v2_scenarios.py (5 more, the seventh session's held-out half; all three make the tuning
half) and scripts/diagnosis_held_out_scenarios.py (4 other real series: the held-out half, v3) with several seeds,
and writes one table: the cause named first, advice on healthy controls, precision of every named timestamp
(injected or a documented real error) and recall of the injected ones, the fix rate (the winner removes >= 90% of
the probe's spikes or lowers validation MAE by more than 2%) and each fix's validation-MAE change; then issue 22's
goals for each half side by side.

Run from the repository root::

    python -m scripts.benchmark_diagnosis                       # 75 scenarios x 3 seeds, ~50 min on 2 cores
    python -m scripts.benchmark_diagnosis --half held_out       # one half
    python -m scripts.benchmark_diagnosis --quick               # 4 scenarios, 1 seed, 3 epochs: a pipeline check
    python -m scripts.benchmark_diagnosis --scenarios co2_level_shift --seeds 0
    python -m scripts.benchmark_diagnosis --from-results A/results.json B/results.json --table T.md  # both halves
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
from lightning_lstm.spikes.data_notes import MAX_NOTES
from scripts import diagnosis_held_out_scenarios as held_out
from scripts import diagnosis_held_out_v2_scenarios as held_out_v2
from scripts import diagnosis_real_scenarios as real
from scripts import diagnosis_scenarios as legacy
from scripts.diagnosis_scenarios import QUICK, REPO, Scenario, base_config, build

HALVES = ("tuning", "held_out")

SEEDS = (0, 1000, 2000)  # far apart: the training sampler's epoch orders of nearby seeds overlap


def named_times(summary: dict) -> set[str]:
    """Timestamps the diagnosis names in findings that give advice."""
    return {
        a["time"].removesuffix(" 00:00:00")
        for f in summary["findings"]
        if f.get("advice")
        for a in f.get("anomalies", [])
    }


def noted_times(summary: dict) -> set[str]:
    """Timestamps the probe's data notes name (values implausible for their column, spikes or not)."""
    return {n["time"].removesuffix(" 00:00:00") for n in summary["probe"].get("data_notes", [])}


def score_run(scenario: Scenario, seed: int, summary: dict, truth: list[str]) -> dict:
    """One row of the per-run results."""
    causes = [f["cause"] for f in summary["findings"] if f.get("advice")]
    first = causes[0] if causes else None
    probe_spikes = len(summary["probe"]["spikes"])
    after = summary["winner_spikes"]
    base, fixed_mae = summary["probe_val_mae"], summary["winner_val_mae"]
    change = fixed_mae / base - 1 if fixed_mae is not None and base else None
    scored = scenario.cause not in (None, real.ANY)
    removed = after is not None and probe_spikes > 0 and after <= 0.1 * probe_spikes
    fixed_any = (removed or (change is not None and change < -0.02)) if scored else None  # issue 22's rule
    if not scored:
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
        "half": scenario.half,
        "scored": scored,
        "right": first == scenario.cause,
        "advice": bool(causes),
        "named": sorted(named_times(summary)),
        "truth": truth,
        "known": sorted(set(scenario.known_errors) & named_times(summary)),
        "noted": sorted(noted_times(summary)),
        "noted_known": sorted(set(scenario.known_errors) & noted_times(summary)),
        "notes_total": summary["probe"].get("data_notes_total", len(noted_times(summary))),
        "probe_spikes": probe_spikes,
        "after_spikes": after,
        "winner": summary["winner"],
        "fixed": fixed,
        "fixed_any": fixed_any,
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


def scenario_lines(rows: list[dict], scenarios: list[Scenario]) -> list[str]:
    """One line per scenario: the first cause per seed, spikes before and after, the fix, the MAE change."""
    lines = [
        "| half | scenario | injected cause | expected | named first (per seed) | right | spikes before -> after "
        "| fixed | val MAE change of the fix | doctor wall s |",
        "|---|---|---|---|---|---:|---|---:|---|---:|",
    ]
    for scenario in scenarios:
        mine = [r for r in rows if r["scenario"] == scenario.name]
        if not mine:
            continue
        changes = ", ".join("-" if r["mae_change"] is None else f"{r['mae_change']:+.1%}" for r in mine)
        spikes = ", ".join(
            f"{r['probe_spikes']}->{'-' if r['after_spikes'] is None else r['after_spikes']}" for r in mine
        )
        scored = scenario.cause not in (None, real.ANY)
        fixed = _pct([bool(r["fixed_any"]) for r in mine]) if scored else "n/a"
        right = _pct([r["right"] for r in mine]) if scenario.cause != real.ANY else "n/a"
        expected = {None: "none (healthy)", real.ANY: "any (real errors)"}.get(scenario.cause, scenario.cause)
        lines.append(
            f"| {scenario.half} | {scenario.name} | {scenario.what} | {expected} | "
            f"{', '.join(r['first'] or 'none' for r in mine)} | {right} | {spikes} | "
            f"{fixed} | {changes} | {statistics.mean(r['wall_s'] for r in mine):.0f} |"
        )
    return lines


def goals(rows: list[dict]) -> dict[str, str]:
    """Issue 22's goals over ``rows`` (one half): label -> reached."""
    causal = [r for r in rows if r["scored"]]
    spiking = [r for r in causal if r["probe_spikes"] > 0]
    healthy = [r for r in rows if r["expected"] is None]
    named = sum(len(r["named"]) for r in rows)
    right_names = sum(len(set(r["named"]) & (set(r["truth"]) | set(r.get("known", [])))) for r in rows)
    hits = sum(len(set(r["named"]) & set(r["truth"])) for r in rows)
    truths = sum(len(r["truth"]) for r in rows)
    worse = [r["mae_change"] for r in causal if r["winner"] is not None and r["mae_change"] is not None]
    clean = [r for r in healthy if not r["truth"]]
    injected = [r for r in rows if r["truth"]]
    noted = sum(len(set(r["noted"]) & set(r["truth"])) for r in injected)
    as_shipped = [r for r in rows if r["expected"] == real.ANY]
    real_notes, real_known = sum(len(r["noted"]) for r in as_shipped), sum(len(r["noted_known"]) for r in as_shipped)
    named_or_noted = sum(len((set(r["named"]) | set(r["noted"])) & set(r["truth"])) for r in rows)
    return {
        "cause named first (runs whose probe has spikes), >= 90%": _pct([r["right"] for r in spiking]),
        "cause named first (all runs with a cause)": _pct([r["right"] for r in causal]),
        "advice on healthy controls: none": f"{sum(r['advice'] for r in healthy)} of {len(healthy)} runs",
        "precision, every value named in advice (injected or documented real errors), >= 0.9":
            f"{right_names / named:.2f} ({right_names} of {named})" if named else "none named",
        "recall, injected values named, >= 0.9": f"{hits / truths:.2f} ({hits} of {truths})" if truths else "n/a",
        "fixed: >= 90% of spikes removed or val MAE > 2% lower, >= 90% of runs": _pct(
            [bool(r["fixed_any"]) for r in causal]
        ),
        "fixed, the earlier rule (spikes removed and MAE within 2%, or MAE lower without spikes)": _pct(
            [bool(r["fixed"]) for r in causal]
        ),
        "worst val-MAE change of a winning fix, <= +2%": f"{max(worse):+.1%}" if worse else "n/a",
        "data notes on healthy controls (clean series): none": f"{sum(r['notes_total'] for r in clean)} notes in "
            f"{sum(r['notes_total'] > 0 for r in clean)} of {len(clean)} runs",
        "data notes: injected values noted, all": f"{noted} of {sum(len(r['truth']) for r in injected)}",
        "data notes in the real-error runs: documented errors among them": f"{real_known} of {real_notes} notes "
            f"(at most the first {MAX_NOTES} of each run)" if as_shipped else "n/a",
        "recall, injected values named in advice or data notes": f"{named_or_noted / truths:.2f} ({named_or_noted} "
            f"of {truths})" if truths else "n/a",
    }  # fmt: skip


def table(rows: list[dict], seeds: list[int], wall: float, scenarios: list[Scenario], runs: str = "") -> str:
    """The markdown tables: one line per scenario, then the goals for each half side by side (``runs``: how the
    rows were run, when they come from several runs)."""
    halves = [h for h in HALVES if any(r["half"] == h for r in rows)]
    per_half = {h: goals([r for r in rows if r["half"] == h]) for h in halves}
    lines = scenario_lines(rows, scenarios)
    lines += ["", "| goal | " + " | ".join(halves) + " |", "|---|" + "---|" * len(halves)]
    for label in per_half[halves[0]] if halves else []:
        lines.append(f"| {label} | " + " | ".join(per_half[h][label] for h in halves) + " |")
    causal = [r for r in rows if r["scored"]]
    when = runs or f"in {wall / 60:.1f} min"
    lines += [
        "",
        f"{len(rows)} doctor runs ({len(causal)} with a cause), seeds {seeds}, {when} on "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), 2 runs at a time, one torch thread "
        "each; the machine was shared, so wall times are upper bounds.",
    ]
    return "\n".join(lines) + "\n"


def all_scenarios() -> list[Scenario]:
    """The tuning half (CO2 and glucose, the 12 real series of the fifth session, the held-out half v2), then the
    held-out half (v3)."""
    return [
        *legacy.SCENARIOS,
        *real.real_scenarios(),
        *held_out_v2.held_out_v2_scenarios(),
        *held_out.held_out_scenarios(),
    ]


def merged_table(paths: list[Path]) -> str:
    """The table of several runs' ``results.json`` (e.g. each half run on its own), each run's wall time named."""
    rows, parts = [], []
    for path in paths:
        mine = json.loads(path.read_text())
        rows += mine
        meta = path.with_name("run.json")
        wall = json.loads(meta.read_text())["wall_s"] if meta.exists() else None
        halves = "+".join(sorted({r["half"] for r in mine}))
        parts.append(f"{halves} in {wall / 60:.1f} min" if wall is not None else halves)
    names = {r["scenario"] for r in rows}
    scenarios = [s for s in all_scenarios() if s.name in names]
    seeds = sorted({r["seed"] for r in rows})
    return table(rows, seeds, 0.0, scenarios, runs="; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "benchmark_diagnosis")
    parser.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    parser.add_argument("--scenarios", nargs="*", default=None)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=list(SEEDS))
    parser.add_argument("--quick", action="store_true", help=f"{QUICK}, one seed, 3 epochs")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--half", choices=[*HALVES, "both"], default="both", help="which half of the scenarios")
    parser.add_argument(
        "--from-results", type=Path, nargs="+", default=None, help="only rebuild the table from these results.json"
    )
    args = parser.parse_args(argv)
    if args.from_results:
        text = merged_table(args.from_results)
        if args.table:
            args.table.parent.mkdir(parents=True, exist_ok=True)
            args.table.write_text(
                f"# Diagnosis benchmark\n\nWritten by `python -m scripts.benchmark_diagnosis`.\n\n{text}"
            )
        print(text)
        return 0
    scenarios = [s for s in all_scenarios() if args.half in ("both", s.half)]
    names = QUICK if args.quick else args.scenarios or [s.name for s in scenarios]
    seeds = args.seeds[:1] if args.quick else args.seeds
    unknown = sorted(set(names) - {s.name for s in all_scenarios()})
    if unknown:
        parser.error(f"unknown scenarios {unknown}")
    start, rows, bases = time.perf_counter(), [], {}
    base_args = {**legacy.BASES, **real.BASES, **held_out_v2.BASES, **held_out.BASES}
    sources = {**legacy.SOURCES, **real.SOURCES, **held_out_v2.SOURCES, **held_out.SOURCES}
    scenarios = [s for s in all_scenarios() if s.name in names]
    for scenario in scenarios:
        base = bases.setdefault(scenario.series, base_config(base_args[scenario.series]))
        overlay, truth = build(scenario, base, args.out / "data", sources[scenario.series])
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
    text = table(rows, seeds, time.perf_counter() - start, scenarios)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    (args.out / "run.json").write_text(json.dumps({"wall_s": time.perf_counter() - start, "seeds": seeds}))
    (args.out / "table.md").write_text(text)
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text("# Diagnosis benchmark\n\nWritten by `python -m scripts.benchmark_diagnosis`.\n\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
