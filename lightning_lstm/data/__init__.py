"""Time series from a file to model batches, one module per stage, in the order :mod:`.datamodule` runs them.

1. read: :mod:`.reading` into a :mod:`.frame` ``SeriesFrame`` (:mod:`.csv_format`, :mod:`.timestamps`); with
   known-future inputs, :mod:`.known_future` sets each series' future rows apart;
2. clean: :mod:`.timeline` (repeated timestamps, resampling, the time step);
3. split: :mod:`.splits` (boundaries and the row spans they cut), then :mod:`.missing` and :mod:`.gaps`;
4. windows: :mod:`.windows`, checked and summarised per split by :mod:`.split_checks`;
5. fit statistics on the training span: :mod:`.outliers`, :mod:`.scaling`, gathered in :mod:`.statistics`, built on
   :mod:`.column_stats`; batches are gathered by :mod:`.dataset`, with :mod:`.known_future` and :mod:`.calendar`;
6. loaders: :mod:`.loaders` (the resumable training order on one process, the shards of each rank under DDP).
"""
