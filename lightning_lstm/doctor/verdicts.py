"""What the runs said of each hypothesis, and the diagnosis the doctor stands by after them.

A hypothesis (a finding with advice) is **confirmed** when one of its own remedies helped (:func:`~.ranking.helped`:
accepted, and fewer spikes or a validation MAE lower by more than the tolerance), **refuted** when its remedies ran
and none helped, and **not tried** when ``doctor.max_candidates`` left it out. A remedy combined from two hypotheses
that helped, where neither one's own remedies did, confirms both (each was needed).

The doctor's final diagnosis puts the confirmed hypotheses first, then those not tried, then the refuted ones, each
group in the diagnosis' own order except that the winning remedy's hypotheses lead their group
(:func:`winner_first`: of two confirmed hypotheses, the one whose remedy the ranking chose is the one the runs
favour). A refuted hypothesis is **withdrawn** (kept as a note that says what its runs
showed, its advice and named values dropped) when another hypothesis was confirmed, or when it rested on fewer than
``MIN_SPIKES`` spikes: weak evidence that the runs contradicted; values named as sentinels (far beyond their
column's range, ``sentinels`` in the finding) are never withdrawn: no run can show such a value to be a reading. A
hypothesis with strong evidence whose every remedy
was refused stays, with the report's "No remedy passed". A remedy that combines a withdrawn hypothesis with another
may not win (:func:`withdrawn_combinations`). The probe's own findings are kept beside it in ``summary.json``
(``probe_findings``).
"""

from __future__ import annotations

from typing import Any

from lightning_lstm.doctor.ranking import Row, helped
from lightning_lstm.spikes.evidence import MIN_SPIKES

CONFIRMED, NOT_TRIED, REFUTED = "confirmed", "not tried", "refuted"
RANK = {CONFIRMED: 0, NOT_TRIED: 1, REFUTED: 2}


def verdicts(
    causes: list[str], candidates: list[dict[str, Any]], rows: list[Row], tolerance: float
) -> dict[str, tuple[str, list[Row]]]:
    """Each cause's verdict and the rows of its own remedies.

    Args:
        causes: the hypotheses' causes, in the diagnosis' order.
        candidates: the remedies tried (``{"name", "cause"}`` dicts; a combined remedy's cause is ``"a+b"``).
        rows: the ranking's rows, the probe first.
        tolerance: the doctor's MAE tolerance.
    """
    base, by_name = rows[0], {r.name: r for r in rows[1:]}

    def own(cause: str) -> list[Row]:
        return [by_name[c["name"]] for c in candidates if c["cause"] == cause and c["name"] in by_name]

    def any_helped(tried: list[Row]) -> bool:
        return any(helped(r, base.spikes, base.val_mae, tolerance) for r in tried)

    joint = set()
    for c in candidates:
        parts = c["cause"].split("+")
        if len(parts) > 1 and c["name"] in by_name and any_helped([by_name[c["name"]]]):
            if not any(any_helped(own(part)) for part in parts):
                joint.update(parts)  # neither alone helped, together they did: each was needed
    out = {}
    for cause in causes:
        tried = own(cause)
        if any_helped(tried) or cause in joint:
            out[cause] = (CONFIRMED, tried)
        else:
            out[cause] = (REFUTED if tried else NOT_TRIED, tried)
    return out


def final_findings(
    findings: list[dict[str, Any]], candidates: list[dict[str, Any]], rows: list[Row], tolerance: float
) -> list[dict[str, Any]]:
    """The findings the doctor stands by after its runs: hypotheses ordered by verdict, refuted ones withdrawn where
    another was confirmed or their evidence was weak (module docstring); each hypothesis carries its ``verdict``."""
    hypotheses = [f for f in findings if f.get("advice")]
    if not hypotheses or len(rows) < 2:
        return findings
    said = verdicts([f["cause"] for f in hypotheses], candidates, rows, tolerance)
    any_confirmed = any(v == CONFIRMED for v, _ in said.values())
    kept, withdrawn = [], []
    for finding in hypotheses:
        verdict, tried = said[finding["cause"]]
        weak = int(finding.get("explained") or 0) < MIN_SPIKES
        if verdict == REFUTED and (any_confirmed or weak) and not finding.get("sentinels"):
            why = "another hypothesis was confirmed" if any_confirmed else f"it rested on under {MIN_SPIKES} spikes"
            withdrawn.append(
                {
                    **finding,
                    "cause": "note",
                    "refuted": finding["cause"],
                    "sentence": f"{finding['sentence']}; withdrawn: refuted by the runs ({outcomes(tried, rows[0])}), "
                    f"and {why}",
                    "advice": None,
                    "overlay": {},
                    "anomalies": [],
                }
            )
        else:
            maes = [r.val_mae for r in tried if r.accepted and r.val_mae is not None]
            kept.append({**finding, "verdict": verdict, "best_val_mae": min(maes, default=None)})
    kept.sort(key=lambda f: RANK[f["verdict"]])
    return kept + withdrawn + [f for f in findings if not f.get("advice")]


def winner_first(findings: list[dict[str, Any]], cause: str | None, tolerance: float) -> list[dict[str, Any]]:
    """The findings with the hypotheses of the winning remedy's ``cause`` (``"a+b"`` for a combined one) first within
    their verdict's group, and among those the ones whose own remedy reached the lowest validation MAE
    (``best_val_mae``, within ``tolerance``: what the user is scored on, as the ranking; a combined winner's parts
    are told apart so). Notes and withdrawn findings keep their place after the hypotheses."""
    parts = set(cause.split("+")) if cause else set()
    hypotheses = [f for f in findings if f.get("advice")]
    if not parts or not hypotheses:
        return findings

    def group(f: dict[str, Any]) -> tuple[int, bool]:
        return RANK.get(f.get("verdict", NOT_TRIED), 1), f["cause"] not in parts

    def worse(f: dict[str, Any]) -> bool:
        mine = f.get("best_val_mae")
        peers = [g["best_val_mae"] for g in hypotheses if group(g) == group(f) and g.get("best_val_mae") is not None]
        return mine is None or (bool(peers) and mine > min(peers) * (1 + tolerance))

    keys = {id(f): (*group(f), worse(f)) for f in hypotheses}  # before sorting: the list is empty while it sorts
    return sorted(hypotheses, key=lambda f: keys[id(f)]) + [f for f in findings if not f.get("advice")]


def outcome(row: Row, base: Row) -> str:
    """One remedy's run against the probe, in words."""
    if row.spikes is None:
        return f"{row.name}: {row.refused}"
    change = row.mae_change(base.val_mae)
    mae = "" if change is None else f", val MAE {change:+.1%}"
    return f"{row.name}: spikes {base.spikes} -> {row.spikes}{mae}" + (
        f", refused: {row.refused}" if row.refused else ""
    )


def outcomes(rows: list[Row], base: Row) -> str:
    """Several remedies' runs in words."""
    return "; ".join(outcome(r, base) for r in rows)


def withdrawn_combinations(final: list[dict[str, Any]], candidates: list[dict[str, Any]]) -> dict[str, str]:
    """Remedies that combine a withdrawn hypothesis with another, and why they may not win: the fix must not apply
    what the diagnosis no longer advises (for example masking a real burst the runs showed innocent)."""
    withdrawn = {f["refuted"] for f in final if f.get("refuted")}
    out = {}
    for c in candidates:
        parts = set(c["cause"].split("+"))
        if len(parts) > 1 and parts & withdrawn:
            names = ", ".join(sorted(p.replace("_", " ") for p in parts & withdrawn))
            out[c["name"]] = f"combines {names}, refuted on its own and withdrawn"
    return out
