"""Which Keras mixed-precision policy to train with: `auto` picks bf16 where the hardware has it."""

from __future__ import annotations

import tensorflow as tf

from components.precision.choices import MIXED_PRECISION_POLICIES

_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo is missing)."""
    try:
        with open(cpuinfo_path, encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_bf16_cpu(flags: set[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively (avx512_bf16 or AMX)."""
    return bool(set(_BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))


def has_native_bf16(flags: set[str] | None = None) -> bool:
    """Whether this machine computes bf16 natively: a GPU with compute capability 8.0+ or a
    CPU with avx512_bf16 / AMX."""
    for gpu in tf.config.list_physical_devices("GPU"):
        if tf.config.experimental.get_device_details(gpu).get("compute_capability",
                                                               (0, 0)) >= (8, 0):
            return True
    return has_bf16_cpu(flags)


def resolve_policy(name: str, flags: set[str] | None = None) -> str:
    """The Keras policy name for a `mixed_precision` setting ("none" -> "float32")."""
    if name not in MIXED_PRECISION_POLICIES:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION_POLICIES}, "
                         f"got {name!r}")
    if name == "auto":
        return "mixed_bfloat16" if has_native_bf16(flags) else "float32"
    return "float32" if name == "none" else name
