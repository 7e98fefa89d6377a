"""CSV dialects: ``data.csv_options`` reads ``;``-separated files with decimal commas and thousands separators, a
UTF-8 BOM reads as is, and a file read with the wrong separator says which option reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.reading import read_frame

EUROPEAN = "ts;y;temp\n" + "".join(f"2021-01-{d + 1:02d};{d},5;1.{d:03d},25\n" for d in range(28))


def test_semicolons_and_decimal_commas_read_through_csv_options(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(EUROPEAN)
    frame = read_frame(path, ["y", "temp"], "ts", csv_options={"sep": ";", "decimal": ",", "thousands": "."})
    np.testing.assert_allclose(frame.values[:3], [[0.5, 1000.25], [1.5, 1001.25], [2.5, 1002.25]])
    with pytest.raises(ValueError) as caught:
        read_frame(path, ["y", "temp"], "ts")
    message = str(caught.value)
    assert "the file parsed to a single column 'ts;y;temp' with the separator ','" in message
    assert "Set data.csv_options: {sep: ';', decimal: ','}" in message and "column keys cannot help" in message


def test_a_utf8_bom_and_thousands_separators(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes('\ufeffdate,value\n2021-01-01,"1,234.5"\n2021-01-02,"2,000"\n'.encode())
    with pytest.raises(ValueError, match=r"'1,234.5'.*thousands separators: set data.csv_options: \{thousands: ','\}"):
        read_frame(path, ["value"], "date")
    frame = read_frame(path, ["value"], "date", csv_options={"thousands": ","})  # 'date', not '\ufeffdate'
    assert frame.values[:, 0].tolist() == [1234.5, 2000.0]


def test_a_decimal_comma_column_names_the_option(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text(EUROPEAN)
    with pytest.raises(
        ValueError, match=r"column 'y' is not numeric.*decimal commas: set data.csv_options: \{sep: ';', decimal: ','\}"
    ):
        read_frame(path, ["y"], "ts", csv_options={"sep": ";"})


def test_csv_options_through_the_data_module(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("ts;y\n" + "".join(f"2021-{m:02d}-01;{m},25\n" for m in range(1, 13)) * 1)
    dm = TimeSeriesDataModule(
        path=str(path),
        time_column="ts",
        target_columns=["y"],
        lookback=2,
        horizon=1,
        val_fraction=0.25,
        test_fraction=0.25,
        csv_options={"sep": ";", "decimal": ","},
    )
    dm.setup("fit")
    assert dm.frame.values[:2, 0].tolist() == [1.25, 2.25]


def test_refused_and_misplaced_csv_options(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("date,y\n2021-01-01,1\n")
    with pytest.raises(ValueError, match=r"data.csv_options: 'index_col' cannot be set here"):
        read_frame(path, ["y"], "date", csv_options={"index_col": 0})
    with pytest.raises(ValueError, match=r"not a pandas.read_csv argument"):
        read_frame(path, ["y"], "date", csv_options={"seperator": ";"})
    np.save(tmp_path / "a.npy", np.zeros((5, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"data.csv_options apply to CSV files; .*a.npy is not one"):
        read_frame(tmp_path / "a.npy", ["0"], None, csv_options={"sep": ";"})
