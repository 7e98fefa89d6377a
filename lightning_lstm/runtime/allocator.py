"""In-process tuning of the glibc ``malloc`` for LSTM training.

PyTorch's CPU LSTM allocates and frees several multi-MiB work buffers on every step. glibc serves such blocks with
``mmap`` (or trims them off the top of the heap) and hands them back to the kernel on ``free``, so each step faults
tens of thousands of fresh pages back in. Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` keeps the buffers in
the heap, which removes almost all of these faults and makes training markedly faster for some extra resident memory.

The ``MALLOC_*_THRESHOLD_`` environment variables do the same but are only read when a process starts;
:func:`tune_allocator` applies the equivalent settings through ``mallopt(3)`` at run time and checks with
``mallinfo2(3)`` that a large block is really served from the heap afterwards.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ENV_SWITCH = "LIGHTNING_LSTM_MALLOC_TUNING"
"""Environment variable that turns tuning off when set to 0/false/no/off."""

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
INT_MAX = 2**31 - 1
"""Largest value ``mallopt`` can take (its argument is a C ``int``)."""

PROBE_BYTES = 48 * 1024 * 1024
"""Probe size: above the 32 MiB dynamic-threshold cap, below a 64 MiB arena heap."""

STRATEGIES: dict[str, tuple[tuple[str, int, int], ...]] = {
    # Keep blocks up to 2 GiB in the heap; bigger ones are still mmap-ed.
    "mmap_threshold": (
        ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, INT_MAX),
        ("M_MMAP_THRESHOLD", M_MMAP_THRESHOLD, INT_MAX),
    ),
    # Fallback for glibc builds that reject thresholds above 32 MiB.
    "mmap_max": (
        ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, INT_MAX),
        ("M_MMAP_MAX", M_MMAP_MAX, 0),
    ),
}
DEFAULT_STRATEGIES: tuple[str, ...] = ("mmap_threshold", "mmap_max")

_USER_ENV_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TOP_PAD_")
_USER_TUNABLES = ("mmap_threshold", "trim_threshold", "mmap_max", "top_pad")
_FALSY = {"0", "false", "no", "off"}
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


@dataclass(frozen=True)
class AllocatorReport:
    """Outcome of :func:`tune_allocator`.

    Attributes:
        applied: Whether the tuned settings are active in this process.
        reason: Human-readable explanation of the outcome.
        settings: ``mallopt`` parameter names and values that were set.
    """

    applied: bool
    reason: str
    settings: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """Returns a one-line summary suitable for a log message."""
        if not self.applied:
            return f"malloc tuning not applied: {self.reason}"
        values = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"malloc tuning applied ({values}): {self.reason}"


class _MallInfo2(ctypes.Structure):
    """``struct mallinfo2`` (glibc >= 2.33); ``hblks`` counts live mmap-ed chunks."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def _skip_reason(enabled: bool | None) -> str | None:
    """Returns why tuning must not be attempted, or None if it may be."""
    if enabled is False:
        return "disabled by enabled=False"
    if enabled is None and os.environ.get(ENV_SWITCH, "").strip().lower() in _FALSY:
        return f"disabled by {ENV_SWITCH}={os.environ[ENV_SWITCH]}"
    if not sys.platform.startswith("linux"):
        return f"platform {sys.platform} does not use glibc malloc"
    user = [name for name in _USER_ENV_VARS if name in os.environ]
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    user += [f"GLIBC_TUNABLES:{t}" for t in _USER_TUNABLES if f"glibc.malloc.{t}" in tunables]
    if user:
        return f"respecting user malloc settings ({', '.join(user)})"
    preload = os.environ.get("LD_PRELOAD", "")
    other = [name for name in _OTHER_ALLOCATORS if name in preload]
    if other:
        return f"LD_PRELOAD replaces malloc ({other[0]})"
    return None


def _load_glibc() -> tuple[Any, str] | str:
    """Returns ``(libc handle, version)`` for glibc, or a reason string."""
    try:
        libc = ctypes.CDLL(None)
    except OSError as exc:
        return f"cannot open the C library: {exc}"
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        libc_name, _ = platform.libc_ver()
        return f"C library is not glibc ({libc_name or 'unknown, e.g. musl'})"
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free.restype = None
    return libc, libc.gnu_get_libc_version().decode()


def _mmapped_chunks(libc: Any) -> int | None:
    """Returns glibc's count of live mmap-ed chunks (``hblks``), if available."""
    if not hasattr(libc, "mallinfo2"):  # glibc < 2.33
        return None
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().hblks)


def _large_block_in_heap(libc: Any, size: int = PROBE_BYTES) -> bool | None:
    """Checks whether a ``size``-byte malloc is served from the heap.

    Only virtual memory is reserved: the block is freed without being touched.

    Returns:
        True if the block did not become an mmap-ed chunk, False if it did, None if this glibc cannot tell (no
        ``mallinfo2``) or malloc failed.
    """
    before = _mmapped_chunks(libc)
    if before is None:
        return None
    pointer = libc.malloc(size)
    if not pointer:
        return None
    after = _mmapped_chunks(libc)
    libc.free(pointer)
    return after == before


def _apply(libc: Any, strategy: str) -> tuple[dict[str, int], str | None]:
    """Calls mallopt for one strategy; returns the settings and any failure."""
    settings: dict[str, int] = {}
    for name, param, value in STRATEGIES[strategy]:
        if libc.mallopt(param, value) != 1:
            return settings, f"mallopt({name}, {value}) was rejected"
        settings[name] = value
    if _large_block_in_heap(libc) is False:
        return settings, f"a {PROBE_BYTES >> 20} MiB block is still mmap-ed"
    return settings, None


def tune_allocator(enabled: bool | None = None, *, strategies: Sequence[str] = DEFAULT_STRATEGIES) -> AllocatorReport:
    """Keeps large freed blocks inside the glibc heap for faster training.

    Tries each strategy in turn until one verifiably works: ``mmap_threshold`` sets ``M_TRIM_THRESHOLD`` and
    ``M_MMAP_THRESHOLD`` to 2 GiB (the equivalent of ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``);
    ``mmap_max`` sets ``M_TRIM_THRESHOLD`` and disables mmap-ed chunks with ``M_MMAP_MAX=0`` for glibc builds that cap
    the threshold at 32 MiB. Settings take effect for every later allocation, so calling this after ``import torch``
    is fine. Forked children (DataLoader workers) inherit them; new interpreters do not.

    Args:
        enabled: True or False to force the decision; None (default) applies tuning unless
            ``LIGHTNING_LSTM_MALLOC_TUNING`` is 0/false/no/off.
        strategies: Names from :data:`STRATEGIES`, tried in order.

    Returns:
        An :class:`AllocatorReport`; on macOS, Windows, musl, with user-set ``MALLOC_*``/``GLIBC_TUNABLES`` malloc
        settings or another allocator preloaded, nothing is changed and ``applied`` is False. Never raises.
    """
    try:
        reason = _skip_reason(enabled)
        if reason is not None:
            return AllocatorReport(False, reason)
        loaded = _load_glibc()
        if isinstance(loaded, str):
            return AllocatorReport(False, loaded)
        libc, version = loaded
        failures: list[str] = []
        settings: dict[str, int] = {}
        for strategy in strategies:
            settings, failure = _apply(libc, strategy)
            if failure is None:
                note = "" if _mmapped_chunks(libc) is not None else ", unverified: no mallinfo2"
                return AllocatorReport(True, f"glibc {version}, strategy {strategy}{note}", settings)
            failures.append(f"{strategy}: {failure}")
        return AllocatorReport(False, f"glibc {version}: " + "; ".join(failures), settings)
    except Exception as exc:  # noqa: BLE001 - tuning is an optimisation, never fatal
        return AllocatorReport(False, f"unexpected error: {type(exc).__name__}: {exc}")
