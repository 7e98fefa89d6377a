"""A pandas DataFrame as the data (``TimeSeriesDataModule(dataframe=...)``): read as its CSV would be, never modified,
never a hyperparameter or a CLI option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lightning_lstm.cli.app import main
from lightning_lstm.data.datamodule import TimeSeriesDataModule

OPTIONS = {"target_columns": ["value"], "lookback": 8, "horizon": 2}


def test_a_dataframe_gives_the_frame_its_csv_gives(sine_csv: Path):
    from_file = TimeSeriesDataModule(path=str(sine_csv), **OPTIONS)
    from_file.setup("fit")
    df = pd.read_csv(sine_csv)
    df["value"] = df["value"].astype(str)  # text numbers, as a CSV reader might leave them: converted in a copy
    from_frame = TimeSeriesDataModule(dataframe=df, **OPTIONS)
    from_frame.setup("fit")
    np.testing.assert_array_equal(from_frame.frame.values, from_file.frame.values)
    np.testing.assert_array_equal(from_frame.frame.times, from_file.frame.times)
    assert from_frame.frame.is_datetime and from_frame.frame.source == "DataFrame"
    assert df["value"].dtype != np.float64  # the caller's DataFrame is untouched
    np.testing.assert_array_equal(from_frame.stats.center, from_file.stats.center)  # the same training statistics

    indexed = TimeSeriesDataModule(dataframe=pd.read_csv(sine_csv).set_index("date"), **OPTIONS)
    indexed.setup("fit")  # the time column as the index
    np.testing.assert_array_equal(indexed.frame.times, from_file.frame.times)


def test_the_dataframe_is_no_hyperparameter_and_errors_name_it(sine_csv: Path):
    data = TimeSeriesDataModule(dataframe=pd.read_csv(sine_csv), **OPTIONS)
    assert "dataframe" not in data.hparams and data.hparams.path is None
    with pytest.raises(ValueError, match="data.path or a pandas DataFrame as dataframe, not both"):
        TimeSeriesDataModule(path=str(sine_csv), dataframe=pd.read_csv(sine_csv), **OPTIONS)
    wrong = TimeSeriesDataModule(dataframe=pd.read_csv(sine_csv), **{**OPTIONS, "target_columns": ["load"]})
    with pytest.raises(ValueError, match=r"^DataFrame: column\(s\) 'load' .* Available columns: \['date', 'value'\]"):
        wrong.setup("fit")
    csv_only = TimeSeriesDataModule(dataframe=pd.read_csv(sine_csv), csv_options={"sep": ";"}, **OPTIONS)
    with pytest.raises(ValueError, match="csv_options apply to CSV files, not to a DataFrame"):
        csv_only.setup("fit")


def test_the_cli_has_no_dataframe_option(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["fit", "--print_config"])
    assert stopped.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert "path" in config["data"] and "dataframe" not in config["data"]
