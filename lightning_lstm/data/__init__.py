"""Loading, chronological splits, missing values, outlier clipping, scaling and windowing of time series."""
