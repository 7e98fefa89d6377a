"""The doctor: probe the user's config, diagnose, try the remedies the diagnosis points to, prove the best one.

In order: the **probe** (the config as it is, for the budget :class:`~lightning_lstm.doctor.options.ProbeBudget`
resolves from the data the probe reads anyway); Lightning's **LR range test** if the learning rate is a suspect; every
**candidate** remedy (:mod:`.remedies`) with the same seed and budget, ``jobs`` at a time; the **ranking**
(:mod:`.ranking`), the hypotheses' **verdicts** (:mod:`.verdicts`: the diagnosis the runs leave standing) and the
outputs in ``out_dir`` (README, "The doctor"). Its wall time is about probe x (1 +
candidates / jobs), plus the range test when it runs and each process's start.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.doctor.config import Overlay, apply_overlay, fit_config, get_key, probe_config, write_yaml
from lightning_lstm.doctor.options import DoctorOptions, ProbeBudget, out_dir, parallel_jobs
from lightning_lstm.doctor.ranking import rank
from lightning_lstm.doctor.remedies import candidates_for, epochs_factor
from lightning_lstm.doctor.report import report_markdown
from lightning_lstm.doctor.runner import Job, run_jobs
from lightning_lstm.doctor.verdicts import final_findings, winner_first, withdrawn_combinations
from lightning_lstm.spikes.outputs import before_after_figure

LR_SUSPECTS = ("learning_rate", "nonfinite")


def probe_overlay(config: dict, options: DoctorOptions, record: Path) -> Overlay:
    """The probe's own overlay: none with ``doctor.probe_epochs``, else a :class:`ProbeBudget` among its callbacks.

    The budget callback counts the steps per epoch from the probe's data once the probe has read them, sets the
    probe's epochs and writes them to ``record`` for the runs after it.
    """
    if options.probe_epochs is not None:
        return {}
    callbacks = get_key(config, "trainer.callbacks") or []
    budget = {
        "class_path": f"{ProbeBudget.__module__}.{ProbeBudget.__qualname__}",
        "init_args": {
            "min_probe_steps": options.min_probe_steps,
            "max_epochs": get_key(config, "trainer.max_epochs"),
            "record": str(record),
        },
    }
    return {"trainer.callbacks": [*(callbacks if isinstance(callbacks, list) else [callbacks]), budget]}


def _run_one(job: Job, threads: int, echo) -> dict[str, Any]:
    result = run_jobs([job], 1, threads, echo)[job.name]
    if "error" in result:
        raise RuntimeError(f"doctor: the {job.name} run failed; its output is in {job.log}:\n{result['error']}")
    return result


def run_doctor(config: dict, options: DoctorOptions, echo=print, command: str = "") -> dict[str, Any]:
    """Runs the doctor on a resolved ``fit`` config (a nested dict) and returns the summary it writes.

    Raises:
        ValueError: if the config has no validation split (remedies are judged on validation MAE).
        RuntimeError: if the probe run fails (its log is named).
    """
    start = time.perf_counter()
    config = fit_config(config)
    if not TimeSeriesDataModule(**(config.get("data") or {})).has_validation:
        raise ValueError("doctor needs a validation split to judge remedies: set data.val_fraction > 0")
    out = out_dir(options, config.get("trainer") or {})
    configs, runs = out / "configs", out / "runs"
    jobs = parallel_jobs(options, config.get("trainer") or {})
    echo(f"[doctor] {jobs} run(s) at a time; writing to {out}")

    def job(name: str, overlay: Overlay, kind: str, epochs: int | None) -> Job:
        return Job(name, kind, write_yaml(probe_config(config, overlay, name, runs, epochs), configs / f"{name}.yaml"))

    record = configs / "probe.budget.json"
    probe_job = job("probe", probe_overlay(config, options, record), "probe", options.probe_epochs)
    probe = _run_one(probe_job, options.threads, echo)
    epochs = options.probe_epochs if options.probe_epochs is not None else ProbeBudget.read(record)
    echo(f"[doctor] probe budget: {epochs} epoch(s) per run")
    findings = probe["findings"]
    lr_test = None
    if options.lr_find and any(f["cause"] in LR_SUSPECTS and f.get("advice") for f in findings):
        lr_test = _run_one(job("lr_range_test", {}, "lr_find", epochs), options.threads, echo)
    settings = {"window_norm": get_key(config, "data.window_norm")}
    candidates = candidates_for(findings, {**probe["context"], **settings}, lr_test, options.max_candidates)
    for candidate in candidates:
        echo(f"[doctor] candidate {candidate.name}: {candidate.what}")
    fits = [job(c.name, c.overlay, "fit", epochs * epochs_factor(c)) for c in candidates]
    results = run_jobs(fits, jobs, options.threads, echo) if candidates else {}
    tried = [{"name": c.name, "cause": c.cause, "overlay": c.overlay, "what": c.what} for c in candidates]
    ran = [(c, results[c.name]) for c in candidates]
    rows, winner = rank(probe, ran, options.tolerance)
    final = final_findings(findings, tried, rows, options.tolerance)  # the runs decide
    blocked = withdrawn_combinations(final, tried)
    if blocked:
        rows, winner = rank(probe, ran, options.tolerance, blocked)
    best = next((c for c in candidates if winner is not None and c.name == winner.name), None)
    final = winner_first(final, best.cause if best is not None else None, options.tolerance)
    fixed = None
    if best is not None:
        change = dict(best.overlay)
        max_epochs = get_key(config, "trainer.max_epochs")
        if epochs_factor(best) > 1 and isinstance(max_epochs, int) and max_epochs > 0:
            change["trainer.max_epochs"] = max_epochs * epochs_factor(best)  # as many optimizer steps as before
        header = (
            f"doctor: your config plus the winning remedy, {best.name} ({best.what}).\nRun: python -m "
            "lightning_lstm fit --config fixed.yaml\n" + "".join(f"changed: {k}: {v}\n" for k, v in change.items())
        )
        fixed = write_yaml(apply_overlay(config, change), out / "fixed.yaml", header)
    after = {**results[best.name], "name": best.name} if best is not None else None
    figure = before_after_figure(probe, after, out / "loss.png", "training loss per step, spikes in red")
    wall = time.perf_counter() - start
    summary = {
        "command": command,
        "probe_epochs": epochs,
        "jobs": jobs,
        "wall_s": wall,
        "estimate_s": float(probe["wall_s"]) * (1 + len(candidates) / jobs),
        "findings": final,
        "probe_findings": findings,
        "lr_range_test": {k: v for k, v in (lr_test or {}).items() if k in ("suggestion", "wall_s")} or None,
        "candidates": tried,
        "rows": [row.__dict__ for row in rows],
        "winner": winner.name if winner is not None else None,
        "fixed_yaml": str(fixed) if fixed else None,
        "figure": str(figure),
        "probe": {
            **{k: probe[k] for k in ("spikes", "anomalies", "wall_s", "train_windows")},
            "data_notes": probe["context"].get("data_notes", []),  # implausible values, spikes or not
            "data_notes_total": probe["context"].get("data_notes_total", 0),
        },
        "probe_val_mae": probe["recorder"].get("end_val_mae"),
        "winner_val_mae": after["recorder"].get("end_val_mae") if after else None,
        "winner_spikes": len(after["spikes"]) if after else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "report.md").write_text(report_markdown(summary, rows, winner, probe, lr_test, options))
    echo(f"[doctor] {_verdict(summary)}; report: {out / 'report.md'} ({wall:.0f} s)")
    return summary


def _verdict(summary: dict[str, Any]) -> str:
    causes = [f for f in summary["findings"] if f.get("advice")]
    if not causes:
        return "nothing stands out: no change suggested"
    if summary["winner"] is None:
        return f"cause: {causes[0]['cause']}; no remedy passed (see the table)"
    return f"cause: {causes[0]['cause']}; winner: {summary['winner']} -> {summary['fixed_yaml']}"
