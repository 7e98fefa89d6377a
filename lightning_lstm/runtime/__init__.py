"""Process-level runtime tuning: glibc malloc behaviour and CPU thread counts.

Call these once, early in the training entry point::

    from lightning_lstm.runtime import apply_num_threads, resolve_num_threads, tune_allocator

    log.info(tune_allocator().describe())
    apply_num_threads(resolve_num_threads(config.num_threads))
"""

from lightning_lstm.runtime.allocator import ENV_SWITCH, AllocatorReport, tune_allocator
from lightning_lstm.runtime.threads import (
    apply_num_threads,
    available_cpus,
    cgroup_cpu_limit,
    local_world_size_from_env,
    resolve_num_threads,
)

__all__ = [
    "ENV_SWITCH",
    "AllocatorReport",
    "apply_num_threads",
    "available_cpus",
    "cgroup_cpu_limit",
    "local_world_size_from_env",
    "resolve_num_threads",
    "tune_allocator",
]
