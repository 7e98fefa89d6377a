"""How a value is described: in the column's units near its neighbours, as a ratio far from them, with the share of
each spike it explains once tested."""

from __future__ import annotations

import pytest

from lightning_lstm.spikes.records import LocalAnomaly, relative_words


@pytest.mark.parametrize(
    "value, reference, words",
    [
        (1017.0, 1014.0, "3 above"),  # a whole-hPa reading: never "1x above"
        (1011.0, 1014.0, "3 below"),
        (500.0, 10.0, "50x"),
        (0.2, 10.0, "2% of"),
        (0.0, 10.0, "10 below"),  # zero: the difference, not "0% of"
        (-999.0, 12.0, "1011 below"),  # another sign: the difference
        (15.0, 10.0, "5 above"),  # 1.5x: the difference
    ],
)
def test_relative_words(value: float, reference: float, words: str):
    assert relative_words(value, reference) == words


def test_describe_gives_the_shares_of_the_spikes_a_value_explains():
    anomaly = LocalAnomaly("bad_value", 7, "s", "pressure", "2020-01-01 05:00", 1017.0, 1014.0, 1014.0, 3.0)
    assert anomaly.describe("neighbouring hours") == (
        "pressure = 1017 at 2020-01-01 05:00 is 3 above the median of the neighbouring hours (1014; robust score 3)"
    )
    anomaly.explains = {"412": 0.83, 500: 0.4, 37: 0.1}  # from spikes.json the keys are strings
    assert anomaly.describe().endswith(
        "; explains 83% of the spike at step 412 and 40% of the spike at step 500 (tested on 3 spikes)"
    )
