"""Time series from a file to model batches, one module per stage, in the order :mod:`.datamodule` runs them.

1. read: :mod:`.reading` (CSV, Parquet, memory-mapped ``.npy``) into a :mod:`.frame` ``SeriesFrame``, with CSV
   dialects from :mod:`.csv_format` and the time column (UTC offsets, day-first dates) from :mod:`.timestamps`; with
   known-future inputs, :mod:`.known_future` sets each series' future rows (no target yet) apart;
2. clean: :mod:`.timeline` (repeated timestamps, resampling, the time step);
3. split: :mod:`.splits` (chronological boundaries, read like the time column, and the row spans they cut), then
   :mod:`.missing` (NaN, inf) and :mod:`.gaps` (runs of at most ``data.max_gap`` filled, never from a later split;
   longer runs skip their windows);
4. windows: :mod:`.windows` (positions by index arithmetic), checked and summarised per split by
   :mod:`.split_checks`;
5. fit statistics on the training span: :mod:`.outliers` (clip bounds), :mod:`.scaling`, gathered in
   :mod:`.statistics` (also their checkpoint entry), built on the chunked reads of :mod:`.column_stats`; batches are
   gathered by :mod:`.dataset`, with the known-future block of :mod:`.known_future` (columns and the
   :mod:`.calendar` sin/cos pairs);
6. loaders: :mod:`.loaders` (the resumable training order on one process, the shards of each rank under DDP).
"""
