"""The spike report as text: one markdown table per spike, and the end-of-fit summary. Pure Python."""

from __future__ import annotations

from lightning_lstm.spikes.records import SpikeRecord


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def spike_markdown(record: SpikeRecord) -> str:
    """One spike as a markdown table plus the windows that contributed most to the loss."""
    position = record.position_in_epoch
    rows = [
        ("epoch", record.epoch),
        ("global step", record.global_step),
        ("batch index", f"{record.batch_idx} of {record.batches_in_epoch or '?'}"),
        ("position within the epoch", "n/a" if position is None else f"{position:.0%}"),
        ("loss", _fmt(record.loss)),
        ("baseline (rolling median)", _fmt(record.baseline)),
        ("score (robust z)", f"{_fmt(record.score)} (threshold {_fmt(record.threshold)})"),
        ("gradient norm before clipping", f"{_fmt(record.grad_norm)} (score {_fmt(record.grad_score)})"),
        ("learning rate", _fmt(record.lr)),
        ("batch size", f"{record.batch_size} of {record.nominal_batch_size}"),
        ("update skipped", "yes" if record.skipped else "no"),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    if record.top_windows:
        lines += [
            "",
            "Windows with the highest loss in this batch:",
            "",
            "| series | inputs from | targets | window loss |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {w['series']} | {w['input_start']} | {w['target_start']} .. {w['target_end']} | {w['loss']:.4g} |"
            for w in record.top_windows
        ]
    return "\n".join(lines)


def summary_markdown(
    records: list[SpikeRecord],
    total_steps: int,
    epochs: int,
    sentences: list[str],
    stop_reason: str | None = None,
    left_out: int = 0,
) -> str:
    """End-of-fit summary: counts, why the fit stopped early (if it did), the diagnosis in plain sentences, and how
    many spikes the per-spike text report left out beyond its cap (``left_out``)."""
    nonfinite = sum(r.nonfinite for r in records)
    skipped = sum(r.skipped for r in records)
    epochs_with = len({r.epoch for r in records})
    head = (
        f"{len(records)} loss spikes in {total_steps} steps over {epochs} epochs "
        f"({epochs_with} epochs with at least one; {nonfinite} non-finite; {skipped} updates skipped)."
    )
    stop = [f"The fit was stopped early: {stop_reason}."] if stop_reason else []
    cap = (
        [f"The per-spike report (spikes/report) shows the first {len(records) - left_out}; {left_out} more spikes "
         "beyond its cap (spikes.max_text_entries) were left out of it. spikes.json has every spike."]
        if left_out else []
    )  # fmt: skip
    return "\n\n".join([head, *stop, *(f"- {s}" for s in sentences), *cap])
