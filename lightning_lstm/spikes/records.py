"""What the diagnosis reads and says: each detected loss spike (:class:`SpikeRecord`, with enough context to diagnose
its cause: where, how big, which windows), the values named inside its windows (:class:`LocalAnomaly`), the run
around them (:class:`RunContext`), and each named cause (:class:`Finding`). Plain dataclasses, no Lightning."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

TOP_WINDOW_KEYS: dict[str, type] = {
    "window_id": int,
    "series": str,
    "input_start": str,
    "target_start": str,
    "target_end": str,
    "loss": float,
}
"""The keys of one ``SpikeRecord.top_windows`` entry, with their types."""


def _check_top_window(entry: dict[str, Any]) -> dict[str, Any]:
    """Returns a copy of one ``top_windows`` entry with its values coerced to the documented types.

    Raises:
        ValueError: if the entry's keys are not exactly :data:`TOP_WINDOW_KEYS`.
    """
    if set(entry) != set(TOP_WINDOW_KEYS):
        missing = sorted(set(TOP_WINDOW_KEYS) - set(entry))
        extra = sorted(set(entry) - set(TOP_WINDOW_KEYS))
        raise ValueError(f"top_windows entry has missing keys {missing} and unexpected keys {extra}")
    return {key: kind(entry[key]) for key, kind in TOP_WINDOW_KEYS.items()}


@dataclass
class SpikeRecord:
    """Everything known about one training step whose loss (or gradient norm) spiked.

    Attributes:
        epoch: the epoch of the step (0-based).
        global_step: the optimizer step count when the spike was seen.
        batch_idx: the batch index within the epoch (0-based).
        batches_in_epoch: the number of batches per epoch, or ``None`` if unknown (an iterable dataset).
        loss: the step's training loss (may be ``nan``/``inf``).
        baseline: the loss detector's rolling median before this step.
        score: the loss detector's robust z-score (``inf`` for a non-finite loss).
        threshold: the loss detector's z-score threshold.
        grad_norm: the total gradient norm before clipping, or ``None`` if not tracked.
        grad_score: the gradient-norm detector's robust z-score, or ``None`` if not tracked.
        grad_spike: whether the gradient norm spiked at the same step.
        lr: the learning rate used by the step.
        batch_size: the number of samples in this batch.
        nominal_batch_size: the configured batch size (a smaller ``batch_size`` means a partial batch).
        nonfinite: whether the loss was NaN or infinite.
        skipped: whether the optimizer step was skipped because of the spike.
        top_windows: the batch's highest-loss windows, highest first; each a dict with the keys of
            :data:`TOP_WINDOW_KEYS` (timestamps as ISO strings, or step numbers as strings).
        explained_share: the largest fraction of the spike's excess loss (over its baseline) that replacing one
            value of its top windows removed, re-scored without an update; ``0.0``: tested, no value matters;
            ``None``: not tested (older ``spikes.json`` files, loss-only mode).
    """

    epoch: int
    global_step: int
    batch_idx: int
    batches_in_epoch: int | None
    loss: float
    baseline: float
    score: float
    threshold: float
    grad_norm: float | None
    grad_score: float | None
    grad_spike: bool
    lr: float
    batch_size: int
    nominal_batch_size: int
    nonfinite: bool
    skipped: bool
    top_windows: list[dict[str, Any]] = field(default_factory=list)
    explained_share: float | None = None

    def __post_init__(self) -> None:
        if self.batch_idx < 0:
            raise ValueError(f"batch_idx must be >= 0, got {self.batch_idx}")
        if self.batches_in_epoch is not None and self.batches_in_epoch < 1:
            raise ValueError(f"batches_in_epoch must be >= 1 or None, got {self.batches_in_epoch}")
        self.top_windows = [_check_top_window(entry) for entry in self.top_windows]

    @property
    def position_in_epoch(self) -> float | None:
        """``batch_idx / batches_in_epoch``, clipped to ``[0, 1]``; ``None`` if the epoch length is unknown."""
        if self.batches_in_epoch is None:
            return None
        return min(max(self.batch_idx / self.batches_in_epoch, 0.0), 1.0)

    @property
    def is_last_batch(self) -> bool:
        """Whether this is the epoch's last batch (``False`` if the epoch length is unknown)."""
        return self.batches_in_epoch is not None and self.batch_idx == self.batches_in_epoch - 1

    @property
    def is_partial_batch(self) -> bool:
        """Whether the batch held fewer samples than the configured batch size."""
        return self.batch_size < self.nominal_batch_size

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict (``nan``/``inf`` stay floats, as ``json.dumps`` writes them by default)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpikeRecord:
        """Builds a record from :meth:`to_dict` output (e.g. read back from JSON).

        Args:
            data: a dict with exactly the record's field names.

        Returns:
            The record.

        Raises:
            ValueError: if a field is missing or an unknown key is present.
        """
        names = [f.name for f in fields(cls)]
        optional = {"explained_share"}  # fields added later: files written before them still load
        missing = [name for name in names if name not in data and name not in optional]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise ValueError(f"SpikeRecord.from_dict: missing fields {missing}, unknown keys {unknown}")
        values = dict(data)
        for name in ("epoch", "global_step", "batch_idx", "batch_size", "nominal_batch_size"):
            values[name] = int(values[name])
        for name in ("loss", "baseline", "score", "threshold", "lr"):
            values[name] = float(values[name])
        for name in ("grad_norm", "grad_score", "explained_share"):
            values.setdefault(name, None)
            values[name] = None if values[name] is None else float(values[name])
        if values["batches_in_epoch"] is not None:
            values["batches_in_epoch"] = int(values["batches_in_epoch"])
        for name in ("grad_spike", "nonfinite", "skipped"):
            values[name] = bool(values[name])
        values["top_windows"] = [dict(entry) for entry in values["top_windows"]]
        return cls(**values)


@dataclass
class LocalAnomaly:
    """One value (``kind="bad_value"`` or ``"peak"``) or level change (``kind="level_shift"``) found inside spike
    windows.

    Attributes:
        kind: ``bad_value`` (implausible for its column: a data error), ``peak`` (far from its neighbours but
            plausible for its column: a real extreme the column shows routinely) or ``level_shift``.
        row: global row in the frame (for a shift: the first row of the new level).
        series: the series' name.
        column: the column's name.
        time: the row's timestamp as text.
        value: the value at ``row``.
        reference: the median of the neighbours (for a shift: of the rows before it).
        after: for a shift, the median of the rows from ``row`` on; else the right-hand median.
        score: the robust score (spreads away from the reference; the smaller of both sides for a bad value).
        spikes: how many spikes had a top window holding this row.
        explains: per spike tested (its global step), the fraction of that spike's excess loss that replacing
            this value removed (empty: not tested).
    """

    kind: str
    row: int
    series: str
    column: str
    time: str
    value: float
    reference: float
    after: float
    score: float
    spikes: int = 0
    explains: dict[int, float] = field(default_factory=dict)

    def describe(self, neighbours: str = "neighbouring values") -> str:
        """Plain words: the value, its time, how far it is from its neighbours (in the column's units, or as a ratio
        when it is over twice or under half of them) and, where tested, the share of each spike it explains."""
        name = self.column
        if self.kind == "level_shift":
            return (
                f"{name} moves from a median of {self.reference:.4g} to {self.after:.4g} at {self.time} and stays "
                f"there (a level shift, {self.score:.0f} local spreads)"
            )
        return (
            f"{name} = {self.value:.4g} at {self.time} is {relative_words(self.value, self.reference)} the median of "
            f"the {neighbours} ({self.reference:.4g}; robust score {self.score:.3g}){self.explains_words()}"
        )

    def explains_words(self) -> str:
        """``"; explains 83% of the spike at step 412"`` (the two largest shares), or ``""`` when not tested."""
        if not self.explains:
            return ""
        shares = sorted(((float(v), int(k)) for k, v in self.explains.items()), reverse=True)
        parts = [f"{share:.0%} of the spike at step {step}" for share, step in shares[:2]]
        more = f" (tested on {len(shares)} spikes)" if len(shares) > 2 else ""
        return f"; explains {' and '.join(parts)}{more}"

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        return asdict(self)


def relative_words(value: float, reference: float) -> str:
    """How ``value`` stands to ``reference`` in plain terms: ``"50x"`` (over twice, same sign), ``"2% of"`` (under
    half, same sign, not zero), else the difference in the column's units (``"3 above"``, ``"10 below"``); never
    "1x"."""
    if reference != 0 and value / reference >= 2:
        return f"{value / reference:.3g}x"
    if reference != 0 and value != 0 and 0 < value / reference <= 0.5:
        return f"{100 * value / reference:.2g}% of"
    return f"{abs(value - reference):.4g} {'above' if value > reference else 'below'}"


@dataclass
class RunContext:
    """What the rules know about the run, besides the spikes (every field beyond the first twelve is optional).

    Attributes:
        num_epochs_run: epochs trained (complete or not).
        steps_per_epoch: training batches per epoch, or ``None`` if unknown.
        shuffle: whether the training data were shuffled each epoch.
        drop_last: whether the last, smaller batch of an epoch was dropped.
        last_batch_size: the size of an epoch's last batch, or ``None`` if unknown.
        nominal_batch_size: the configured batch size.
        gradient_clip_val: the trainer's gradient clipping value, or ``None`` if clipping is off.
        outliers: the data module's outlier handling (e.g. ``"none"``, ``"quantile"``).
        lr_max_seen: the highest learning rate used in the run.
        lr_initial: the learning rate at the first step.
        total_steps: optimizer steps taken in the run.
        lr_increased_steps: global steps at which the learning rate rose.
        grad_norm_quantiles: quantiles of every step's pre-clip gradient norm (``{"q50": .., "q95": .., "q100": ..}``).
        clip_engaged_steps: steps whose norm exceeded ``gradient_clip_val`` (so clipping rescaled them).
        outliers_clipped: training values the outlier bounds clipped (all columns), or ``None`` if unknown.
        scaler: the data's scaler (``"standard"``, ``"none"``, ...).
        target_median: the median of the training targets (original scale), or ``None``.
        target_std: their robust spread (1.4826 x MAD, so one sentinel value does not inflate it), or ``None``.
        final_loss: the training loss at the end (the detector's rolling median), or ``None``.
        anomalies: bad values and level shifts found in the spikes' top windows.
        clip_effects: per ``data.outliers`` method, ``{"clipped": training values cut, "anomalies": bad values cut}``.
        window_width: rows per window (lookback + horizon), to tell which rows a spike's windows hold.
        neighbour_words: how a value's neighbours are called ("neighbouring hours").
        val_mae_best: the best epoch's validation MAE, if known.
        val_mae_final: the last epoch's validation MAE, if known.
        data_notes: values implausible for their column in the training span
            (:class:`~lightning_lstm.spikes.data_notes.DataNote` as dicts), at most ``MAX_NOTES``.
        data_notes_total: how many there were in all.
        loss: the model's training loss (``mse``, ``huber``, ``l1``, ``pinball``), or ``None`` if unknown.
        target_columns: the columns the model forecasts (empty: unknown).
        loss_dispersion: the spread (1.4826 x MAD) of the run's last half of step losses over their median, or
            ``None`` if unknown: how noisy one batch's mean loss is.
        target_tail: how far the training targets' 0.1% or 99.9% quantile lies from their median, in interquartile
            ranges (2.3 for a normal distribution), or ``None`` if unknown.
    """

    num_epochs_run: int
    steps_per_epoch: int | None
    shuffle: bool
    drop_last: bool
    last_batch_size: int | None
    nominal_batch_size: int
    gradient_clip_val: float | None
    outliers: str
    lr_max_seen: float
    lr_initial: float
    total_steps: int
    lr_increased_steps: list[int] = field(default_factory=list)
    grad_norm_quantiles: dict[str, float] = field(default_factory=dict)
    clip_engaged_steps: int | None = None
    outliers_clipped: int | None = None
    scaler: str = "standard"
    target_median: float | None = None
    target_std: float | None = None
    final_loss: float | None = None
    anomalies: list[LocalAnomaly] = field(default_factory=list)
    clip_effects: dict[str, dict[str, int]] = field(default_factory=dict)
    window_width: int | None = None
    neighbour_words: str = "neighbouring values"
    val_mae_best: float | None = None
    val_mae_final: float | None = None
    data_notes: list[dict[str, Any]] = field(default_factory=list)
    data_notes_total: int = 0
    loss: str | None = None
    target_columns: list[str] = field(default_factory=list)
    loss_dispersion: float | None = None
    target_tail: float | None = None


@dataclass
class Finding:
    """One named cause (or a note), with its evidence.

    Attributes:
        cause: ``nonfinite``, ``bad_values``, ``level_shift``, ``last_batch``, ``order``, ``heavy_tail``,
            ``batch_noise``, ``gradients``, ``learning_rate``, ``unscaled``, or ``note`` (checked, no advice).
        sentence: the cause and its evidence in plain words.
        confidence: 0..1, how sure the rule is (the share of spikes explained, weighed by the evidence's strength).
        advice: the config change in words, or ``None`` for a note.
        overlay: the config change as dotted keys (``{"data.shuffle": True}``); ``{}`` when it is no config key
            (masking values).
        explained: how many spikes the finding explains.
        anomalies: the values or shifts it names.
        sentinels: the values are named for what they are (sentinel codes far beyond their column's range), not for
            spikes they cause: no run can refute that, so the doctor never withdraws the finding.
    """

    cause: str
    sentence: str
    confidence: float
    advice: str | None = None
    overlay: dict[str, Any] = field(default_factory=dict)
    explained: int = 0
    anomalies: list[LocalAnomaly] = field(default_factory=list)
    sentinels: bool = False

    def text(self) -> str:
        """The sentence, its confidence and the advice, as one line of the diagnosis."""
        advice = f" {self.advice}" if self.advice else ""
        return f"{self.sentence} (confidence {self.confidence:.2f}).{advice}"
