"""Tests for lightning_lstm.runtime.threads (CPU thread count resolution)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lightning_lstm.runtime import threads
from lightning_lstm.runtime.threads import (
    apply_num_threads,
    available_cpus,
    cgroup_cpu_limit,
    local_world_size_from_env,
    resolve_num_threads,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("content", "expected"),
    [("max 100000", None), ("200000 100000", 2.0), ("150000 100000", 1.5), ("50000 100000", 0.5), ("", None)],
)
def test_cgroup_v2_cpu_max(tmp_path: Path, content: str, expected: float | None) -> None:
    assert cgroup_cpu_limit(_write(tmp_path, "cpu.max", content)) == expected


@pytest.mark.parametrize("controller", ["cpu", "cpu,cpuacct"])
def test_cgroup_v1_quota(tmp_path: Path, controller: str) -> None:
    _write(tmp_path, f"{controller}/cpu.cfs_quota_us", "300000")
    _write(tmp_path, f"{controller}/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_limit(tmp_path) == 3.0


def test_cgroup_v1_unlimited_and_missing(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path / "does-not-exist") is None
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_limit(tmp_path) is None


@pytest.mark.usefixtures("eight_cpus")
@pytest.mark.parametrize(
    ("content", "expected"), [("max 100000", 8), ("200000 100000", 2), ("150000 100000", 1), ("10000 100000", 1)]
)
def test_available_cpus_is_min_of_affinity_and_quota(tmp_path: Path, content: str, expected: int) -> None:
    assert available_cpus(_write(tmp_path, "cpu.max", content)) == expected


@pytest.mark.usefixtures("eight_cpus")
def test_quota_below_affinity_wins(tmp_path: Path) -> None:
    root = _write(tmp_path, "cpu.max", "200000 100000")
    assert resolve_num_threads(cgroup_root=root) == 2


def test_explicit_request_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_num_threads(5, local_world_size=4, cgroup_root=tmp_path) == 5


@pytest.mark.parametrize("bad", [0, -2])
def test_invalid_request_raises(bad: int) -> None:
    with pytest.raises(ValueError):
        resolve_num_threads(bad)
    with pytest.raises(ValueError):
        apply_num_threads(bad)


@pytest.mark.usefixtures("eight_cpus")
@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("4,2", 4), ("0", 4), ("garbage", 4)])
def test_omp_num_threads_respected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, expected: int) -> None:
    """A valid OMP_NUM_THREADS is used as is (not divided); invalid ones fall back to 8 CPUs / 2 ranks."""
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert resolve_num_threads(local_world_size=2, cgroup_root=tmp_path) == expected


@pytest.mark.usefixtures("eight_cpus")
@pytest.mark.parametrize(("ranks", "expected"), [(1, 8), (2, 4), (3, 2), (8, 1), (16, 1)])
def test_divided_by_local_world_size_never_below_one(tmp_path: Path, ranks: int, expected: int) -> None:
    assert resolve_num_threads(local_world_size=ranks, cgroup_root=tmp_path) == expected


@pytest.mark.usefixtures("eight_cpus")
@pytest.mark.parametrize(
    ("env", "expected"),
    [({"LOCAL_WORLD_SIZE": "4"}, 2), ({"SLURM_NTASKS_PER_NODE": "2(x3)"}, 4), ({"LOCAL_WORLD_SIZE": "x"}, 8), ({}, 8)],
)
def test_local_world_size_from_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], expected: int
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_num_threads(cgroup_root=tmp_path) == expected
    assert local_world_size_from_env() == 8 // expected


def test_invalid_local_world_size_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        resolve_num_threads(local_world_size=0, cgroup_root=tmp_path)


def test_real_machine_gives_at_least_one() -> None:
    assert 1 <= resolve_num_threads() <= (os.cpu_count() or 1)


def test_apply_num_threads_sets_torch() -> None:
    torch = pytest.importorskip("torch")
    original = torch.get_num_threads()
    try:
        assert apply_num_threads(1) == original
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(original)
