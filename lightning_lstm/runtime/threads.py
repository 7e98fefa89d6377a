"""Choosing the number of intra-op CPU threads for PyTorch.

``torch.get_num_threads()`` defaults to the number of cores of the machine,
which oversubscribes the CPU inside containers with a CPU quota, under a
restricted CPU affinity (``taskset``, Slurm), or when several ranks share a
node. :func:`resolve_num_threads` derives a sensible count from the CPUs this
process may actually use, and :func:`apply_num_threads` hands it to torch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")
_LOCAL_WORLD_SIZE_VARS = ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE")
_CGROUP_V1_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu", ".")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _parse_positive_int(text: str | None) -> int | None:
    """Parses the leading integer of ``text`` (e.g. Slurm's ``"4(x2)"``)."""
    if not text:
        return None
    digits = ""
    for char in text.strip():
        if not char.isdigit():
            break
        digits += char
    value = int(digits) if digits else 0
    return value if value > 0 else None


def _quota_cpus(quota: str, period: str) -> float | None:
    """Converts a CFS quota/period pair to CPUs; None means unlimited."""
    if quota == "max":
        return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:  # cgroup v1 uses -1 for "no quota"
        return None
    return quota_us / period_us


def cgroup_cpu_limit(root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT) -> float | None:
    """Reads the CPU bandwidth limit of the cgroup mounted at ``root``.

    Looks at cgroup v2 ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``)
    and then at cgroup v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` under the
    ``cpu`` (or ``cpu,cpuacct``) controller directory or ``root`` itself.

    Args:
        root: Directory holding the cgroup files; tests point it at tmp files.

    Returns:
        The quota in CPUs (may be fractional), or None when unlimited/unknown.
    """
    base = Path(root)
    cpu_max = _read_text(base / "cpu.max")
    if cpu_max is not None:
        fields = cpu_max.split()
        period = fields[1] if len(fields) > 1 else "100000"
        return _quota_cpus(fields[0], period) if fields else None
    for sub in _CGROUP_V1_DIRS:
        quota = _read_text(base / sub / "cpu.cfs_quota_us")
        period = _read_text(base / sub / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _quota_cpus(quota, period)
    return None


def available_cpus(cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT) -> int:
    """Counts the CPUs this process may use: affinity mask and cgroup quota.

    A fractional quota is rounded down (1.5 CPUs -> 1) so that threads do not
    get throttled at the end of each CFS period; the result is at least 1.

    Args:
        cgroup_root: Directory holding the cgroup files.

    Returns:
        The number of usable CPUs, at least 1.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not available on macOS / Windows
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, math.floor(limit))
    return max(1, cpus)


def local_world_size_from_env() -> int:
    """Returns the ranks per node from LOCAL_WORLD_SIZE/SLURM_NTASKS_PER_NODE, else 1."""
    for name in _LOCAL_WORLD_SIZE_VARS:
        value = _parse_positive_int(os.environ.get(name))
        if value is not None:
            return value
    return 1


def resolve_num_threads(
    requested: int | None = None,
    local_world_size: int | None = None,
    *,
    cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT,
) -> int:
    """Decides how many intra-op threads each training process should use.

    Precedence: an explicit ``requested`` count; then ``OMP_NUM_THREADS`` if it
    holds a positive integer (its first entry for nested lists like ``"4,2"``);
    otherwise the usable CPUs (see :func:`available_cpus`) divided evenly by
    the ranks on this node. The first two are taken as given, not divided.

    Args:
        requested: Explicit thread count, e.g. from the CLI/config.
        local_world_size: Training processes on this node; None reads
            ``LOCAL_WORLD_SIZE`` then ``SLURM_NTASKS_PER_NODE`` (default 1).
        cgroup_root: Directory holding the cgroup files.

    Returns:
        The number of threads, at least 1.

    Raises:
        ValueError: If ``requested`` or ``local_world_size`` is below 1.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"requested thread count must be >= 1, got {requested}")
        return int(requested)
    from_omp = _parse_positive_int(os.environ.get("OMP_NUM_THREADS"))
    if from_omp is not None:
        return from_omp
    ranks = local_world_size_from_env() if local_world_size is None else local_world_size
    if ranks < 1:
        raise ValueError(f"local_world_size must be >= 1, got {ranks}")
    return max(1, available_cpus(cgroup_root) // ranks)


def apply_num_threads(num_threads: int) -> int:
    """Sets torch's intra-op thread count.

    Args:
        num_threads: Thread count, typically from :func:`resolve_num_threads`.

    Returns:
        The previous thread count.

    Raises:
        ValueError: If ``num_threads`` is below 1.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    import torch  # deferred so that importing the runtime package stays cheap

    previous = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    return previous
