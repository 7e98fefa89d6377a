"""A catalogue of bad inputs through the real command line: each is refused by name, and no earlier output is touched.

One module fixture fits a tiny model and predicts once (checkpoints, config, events, ``predictions.csv`` under one
folder). Every case then runs ``lightning_lstm.cli.main([...])`` in this process against that same folder (same
``save_dir``, same checkpoints, the same ``predictions.csv`` where it fits the case) and must:

1. leave every file that existed before byte-for-byte unchanged (SHA-256 before and after; new run folders are fine);
2. raise the expected error type (``SystemExit`` 2 where jsonargparse rejects the command line, the message then
   being its stderr) with a message holding the named file / column / key / value.

Cases marked ``gap`` describe a message the code does not give yet: step 1 is still enforced, and step 2 is reported
as an expected failure (``xfail``) with the current behaviour, until the gap is fixed (then the case fails and asks
for the note to be removed). About 30-40 s on two quiet cores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.cli import main
from tests.helpers import REPO

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def good_table(rows: int = 200) -> pd.DataFrame:
    t = np.arange(rows)
    return pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "value": 10 + np.sin(t / 3),
            "other": np.cos(t / 5),
            "label": "x",
            "empty": np.nan,
        }
    )


def base(root: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(REPO / "configs" / "default.yaml"),
        f"--trainer.logger.init_args.save_dir={root}",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=3",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--model.hidden_size=4",
        "--model.num_layers=1",
        "--data.target_columns=[value]",
        "--data.lookback=10",
        "--data.horizon=2",
        "--data.window_norm=none",
        "--forecast_plot.every_n_epochs=0",
        *extra,
    ]


@dataclass(frozen=True)
class Run:
    """What the fixture left: its folder, the good CSV, a checkpoint and config, a 2-feature checkpoint, outputs."""

    root: Path
    inputs: Path
    csv: Path
    ckpt: Path
    config: Path
    wide_ckpt: Path
    predictions: Path

    def fit(self, *extra: str) -> list[str]:
        return ["fit", *base(self.root, f"--data.path={self.csv}", *extra)]

    def predict(self, *extra: str) -> list[str]:
        return [
            "predict",
            "--config",
            str(self.config),
            f"--ckpt_path={self.ckpt}",
            f"--predictions.output_path={self.root / 'new_predictions.csv'}",
            *extra,
        ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("bad_input")
    inputs = root / "inputs"
    inputs.mkdir()
    csv = inputs / "good.csv"
    good_table().to_csv(csv, index=False)
    main(["fit", *base(root, f"--data.path={csv}")])
    main(
        [
            "fit",
            *base(
                root,
                f"--data.path={csv}",
                "--data.feature_columns=[value, other]",
                "--trainer.logger.init_args.name=wide",
            ),
        ]
    )
    fitted = root / "default" / "version_0"
    result = Run(
        root,
        inputs,
        csv,
        fitted / "checkpoints" / "last.ckpt",
        fitted / "config.yaml",
        root / "wide" / "version_0" / "checkpoints" / "last.ckpt",
        root / "predictions.csv",
    )
    main(
        [
            "predict",
            "--config",
            str(result.config),
            f"--ckpt_path={result.ckpt}",
            f"--predictions.output_path={result.predictions}",
        ]
    )
    write_bad_inputs(result)
    return result


def write_bad_inputs(run: Run) -> None:
    folder = run.inputs
    (folder / "empty.csv").write_bytes(b"")
    (folder / "header.csv").write_text("date,value\n")
    (folder / "bad.parquet").write_bytes(b"this is not parquet")
    (folder / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    (folder / "data.xlsx").write_bytes(b"x")
    table = good_table()
    table.loc[50, "value"] = np.nan
    table.to_csv(folder / "nan.csv", index=False)
    table = good_table().astype({"value": object})
    table.loc[60, "value"] = "inf"
    table.to_csv(folder / "inf.csv", index=False)
    table = good_table()
    table.loc[41, "date"] = table.loc[40, "date"]
    table.to_csv(folder / "repeated.csv", index=False)
    table = good_table()
    table.loc[7, "date"] = "yesterday"
    table.to_csv(folder / "dates.csv", index=False)
    (folder / "corrupt.ckpt").write_bytes(b"not a checkpoint at all")
    raw = run.ckpt.read_bytes()
    (folder / "truncated.ckpt").write_bytes(raw[: len(raw) // 2])
    checkpoint = torch.load(run.ckpt, weights_only=True)
    del checkpoint["TimeSeriesDataModule"]["format"]
    torch.save(checkpoint, folder / "no_format.ckpt")
    (folder / "a_file.txt").write_text("a file, not a folder")


@dataclass(frozen=True)
class Case:
    """``args(run)`` must raise ``error`` whose message holds every fragment of ``words``."""

    name: str
    args: Callable[[Run], list[str]]
    error: type[BaseException]
    words: Callable[[Run], list[str]]
    gap: str = field(default="")


def cli_error(*words: str) -> tuple[type[BaseException], Callable[[Run], list[str]]]:
    return SystemExit, lambda run: list(words)


CASES = [
    # -- files ------------------------------------------------------------------------------------------------------
    Case(
        "missing file",
        lambda r: r.fit(f"--data.path={r.inputs / 'nope.csv'}"),
        ValueError,
        lambda r: ["data.path", str(r.inputs / "nope.csv"), "does not exist"],
    ),
    Case(
        "empty file",
        lambda r: r.fit(f"--data.path={r.inputs / 'empty.csv'}"),
        ValueError,
        lambda r: [str(r.inputs / "empty.csv"), "the file is empty"],
    ),
    Case(
        "header without rows",
        lambda r: r.fit(f"--data.path={r.inputs / 'header.csv'}"),
        ValueError,
        lambda r: [str(r.inputs / "header.csv"), "no data rows"],
    ),
    Case(
        "corrupt parquet",
        lambda r: r.fit(f"--data.path={r.inputs / 'bad.parquet'}"),
        ValueError,
        lambda r: [str(r.inputs / "bad.parquet"), "could not read the file as Parquet"],
    ),
    Case(
        "corrupt npy",
        lambda r: r.fit(
            f"--data.path={r.inputs / 'bad.npy'}", "--data.time_column=null", "--data.target_columns=['0']"
        ),
        ValueError,
        lambda r: [str(r.inputs / "bad.npy"), "not a readable .npy"],
    ),
    Case(
        "unsupported suffix",
        lambda r: r.fit(f"--data.path={r.inputs / 'data.xlsx'}"),
        ValueError,
        lambda r: [str(r.inputs / "data.xlsx"), "'.xlsx'", "use .csv, .parquet or .npy"],
    ),
    Case(
        "missing config file",
        lambda r: ["fit", "--config", str(r.inputs / "nope.yaml")],
        *cli_error('Parser key "config"', "nope.yaml", "does not exist"),
    ),
    # -- columns ----------------------------------------------------------------------------------------------------
    Case(
        "unknown target column",
        lambda r: r.fit("--data.target_columns=[nope]"),
        ValueError,
        lambda r: [str(r.csv), "'nope' (data.target_columns / data.feature_columns) not found", "'value'"],
    ),
    Case(
        "unknown time column",
        lambda r: r.fit("--data.time_column=when"),
        ValueError,
        lambda r: [str(r.csv), "'when' (data.time_column) not found"],
    ),
    Case(
        "text column as feature",
        lambda r: r.fit("--data.feature_columns=[value, label]"),
        ValueError,
        lambda r: [str(r.csv), "column 'label' is not numeric", "['x']"],
    ),
    Case(
        "empty column as feature",
        lambda r: r.fit("--data.feature_columns=[value, empty]"),
        ValueError,
        lambda r: [str(r.csv), "column 'empty' is entirely missing"],
    ),
    # -- values -----------------------------------------------------------------------------------------------------
    Case(
        "NaN with missing: error",
        lambda r: r.fit(f"--data.path={r.inputs / 'nan.csv'}", "--data.missing=error"),
        ValueError,
        lambda r: [str(r.inputs / "nan.csv"), "non-finite values in column 'value'", "2021-02-20"],
    ),
    Case(
        "inf with missing: error",
        lambda r: r.fit(f"--data.path={r.inputs / 'inf.csv'}", "--data.missing=error"),
        ValueError,
        lambda r: [str(r.inputs / "inf.csv"), "non-finite values in column 'value'", "2021-03-02"],
    ),
    Case(
        "repeated timestamps",
        lambda r: r.fit(f"--data.path={r.inputs / 'repeated.csv'}"),
        ValueError,
        lambda r: [str(r.inputs / "repeated.csv"), "column 'date'", "2021-02-10", "data.duplicate_timestamps"],
    ),
    Case(
        "text in the time column",
        lambda r: r.fit(f"--data.path={r.inputs / 'dates.csv'}"),
        ValueError,
        lambda r: [str(r.inputs / "dates.csv"), "time column 'date'", "['yesterday']"],
    ),
    # -- configs: types, keys, sizes --------------------------------------------------------------------------------
    Case(
        "text for an integer",
        lambda r: r.fit("--data.lookback=ten"),
        *cli_error('Parser key "data.lookback"', "Got value: ten"),
    ),
    Case("text for a learning rate", lambda r: r.fit("--model.optimizer.init_args.lr=fast"), *cli_error("lr='fast'")),
    Case("misspelt key", lambda r: r.fit("--data.lookbak=5"), *cli_error("unrecognized arguments: --data.lookbak=5")),
    Case(
        "unknown missing policy",
        lambda r: r.fit("--data.missing=zero"),
        *cli_error('Parser key "data.missing"', "Got value: zero"),
    ),
    Case(
        "unknown spike action",
        lambda r: r.fit("--spikes.actions=[explode]"),
        *cli_error('Parser key "spikes.actions"', "Got value: explode"),
    ),
    Case(
        "lookback 0",
        lambda r: r.fit("--data.lookback=0"),
        ValueError,
        lambda r: ["data.lookback must be an integer >= 1, got 0"],
    ),
    Case(
        "batch size 0",
        lambda r: r.fit("--data.batch_size=0"),
        ValueError,
        lambda r: ["data.batch_size must be an integer >= 1, got 0"],
    ),
    Case(
        "hidden size 0",
        lambda r: r.fit("--model.hidden_size=0"),
        ValueError,
        lambda r: ["model.hidden_size must be >= 1, got 0"],
    ),
    Case(
        "lookback longer than the series",
        lambda r: r.fit("--data.lookback=500"),
        ValueError,
        lambda r: [str(r.csv), "the train split has no window", "500 + 2 = 502", "Lower data.lookback"],
    ),
    Case(
        "splits leave no training data",
        lambda r: r.fit("--data.val_fraction=0.6", "--data.test_fraction=0.5"),
        ValueError,
        lambda r: ["data.val_fraction + data.test_fraction = 1.1", "nothing for training"],
    ),
    # -- checkpoints ------------------------------------------------------------------------------------------------
    Case(
        "predict without a checkpoint",
        lambda r: ["predict", "--config", str(r.config), f"--predictions.output_path={r.root / 'x.csv'}"],
        RuntimeError,
        lambda r: ["predict needs --ckpt_path"],
    ),
    Case(
        "checkpoint file missing",
        lambda r: r.predict(f"--ckpt_path={r.inputs / 'gone.ckpt'}"),
        FileNotFoundError,
        lambda r: [str(r.inputs / "gone.ckpt")],
    ),
    Case(
        "checkpoint of other feature columns",
        lambda r: r.predict("--data.target_columns=[other]"),
        ValueError,
        lambda r: ["trained with data.feature_columns = ['value']", "the config gives ['other']"],
    ),
    Case(
        "checkpoint of another lookback, resumed",
        lambda r: r.fit("--data.lookback=12", f"--ckpt_path={r.ckpt}"),
        ValueError,
        lambda r: ["trained with data.lookback = 10", "the config gives 12"],
    ),
    Case(
        "checkpoint without the data state's format",
        lambda r: r.predict(f"--ckpt_path={r.inputs / 'no_format.ckpt'}"),
        ValueError,
        lambda r: ["data state has format None", "this version reads 1"],
    ),
    Case(
        "checkpoint with another number of features",
        lambda r: r.predict(f"--ckpt_path={r.wide_ckpt}"),
        ValueError,
        lambda r: ["data.feature_columns", "['value', 'other']", "['value']"],
    ),
    Case(
        "corrupt checkpoint",
        lambda r: r.predict(f"--ckpt_path={r.inputs / 'corrupt.ckpt'}"),
        ValueError,
        lambda r: [str(r.inputs / "corrupt.ckpt"), "ckpt_path"],
    ),
    Case(
        "truncated checkpoint",
        lambda r: r.fit(f"--ckpt_path={r.inputs / 'truncated.ckpt'}"),
        ValueError,
        lambda r: [str(r.inputs / "truncated.ckpt"), "ckpt_path"],
    ),
    # -- outputs ----------------------------------------------------------------------------------------------------
    Case(
        "predictions file exists",
        lambda r: r.predict(f"--predictions.output_path={r.predictions}"),
        ValueError,
        lambda r: ["predictions.output_path", str(r.predictions), "exists", "predictions.overwrite"],
    ),
    Case(
        "predictions suffix",
        lambda r: r.predict(f"--predictions.output_path={r.root / 'p.xlsx'}"),
        ValueError,
        lambda r: ["predictions.output_path must end in .csv or .parquet", "p.xlsx"],
    ),
    Case(
        "predictions folder is a file",
        lambda r: r.predict(f"--predictions.output_path={r.inputs / 'a_file.txt' / 'out.csv'}"),
        ValueError,
        lambda r: ["predictions.output_path", str(r.inputs / "a_file.txt")],
    ),
    Case(
        "predictions folder not writable",
        lambda r: r.predict("--predictions.output_path=/proc/out.csv"),
        ValueError,
        lambda r: ["predictions.output_path", "/proc", "not writable"],
    ),
]


def hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_by_name_and_earlier_output_survives(
    case: Case, run: Run, capsys: pytest.CaptureFixture
) -> None:
    before = hashes(run.root)
    capsys.readouterr()
    try:
        main(case.args(run))
    except BaseException as err:  # noqa: BLE001 - SystemExit included: jsonargparse exits on a bad command line
        raised = err
    else:
        raised = None
    after = hashes(run.root)
    assert {path: after.get(path) for path in before} == before, "an earlier output was changed or removed"

    message = capsys.readouterr().err if isinstance(raised, SystemExit) else str(raised)
    missing = [w for w in case.words(run) if w not in message]
    as_expected = isinstance(raised, case.error) and not missing
    if case.gap:
        assert not as_expected, f"gap fixed ({case.gap}): drop the case's gap note"
        pytest.xfail(f"{case.gap}; got {type(raised).__name__}: {message[:200]}")
    assert isinstance(raised, case.error), f"expected {case.error.__name__}, got {type(raised).__name__}: {raised}"
    if isinstance(raised, SystemExit):
        assert raised.code == 2
    assert not missing, f"{missing} not in: {message}"
