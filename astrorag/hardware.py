"""The CPUs this process may really use, and what they are: benchmarks name them, thread pools size to them.

``os.cpu_count()`` is the host's count. In a container limited to 2 CPUs (an affinity mask or a cgroup
quota) it can say 64, and a thread pool of 64 on 2 CPUs spends its time switching: onnxruntime sized that
way runs several times slower than with 2 threads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 cpu.max, else v1), or None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 else None
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup quota (rounded up), at least 1.

    >>> usable_cpus() >= 1
    True
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        count = min(count, max(1, int(-(-quota // 1))))
    return max(1, count)


def cpu_info() -> dict[str, Any]:
    """The CPU numbers were measured on: model, usable cores (and the host's count), VNNI / AMX int8 support.

    >>> sorted(cpu_info())[:3]
    ['cpu_amx', 'cpu_cores', 'cpu_host_cores']
    """
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu_model": model, "cpu_cores": usable_cpus(), "cpu_host_cores": os.cpu_count(),
            "cpu_vnni": bool(flags & {"avx512_vnni", "avx_vnni"}), "cpu_amx": "amx_int8" in flags}
