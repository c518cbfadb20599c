"""The size cap of a recording: the default one, and sizes written for people.

Without a cap a long run at the `values` tier once wrote an 8 GB tape and filled its disk. So a
recording is capped unless asked otherwise: at the smaller of CEILING and FRACTION of the space free
on the tape's filesystem when recording starts. The other half of that space stays free whatever
the run does (the cap counts the tape's pages; the write-ahead log beside it stays small).
"""

from __future__ import annotations

import os
import shutil

CEILING = 10 << 30  # bytes: no default cap is larger
FRACTION = 0.5  # of the free space at the start of recording
DEFAULT = "default"  # Recorder(max_bytes=DEFAULT): the cap default_cap_for() gives
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def default_cap(free_bytes: int, ceiling: int = CEILING, fraction: float = FRACTION) -> int:
    """The default size cap in bytes for a tape on a filesystem with `free_bytes` free."""
    if free_bytes < 0 or ceiling <= 0 or not 0 < fraction < 1:
        raise ValueError(f"default_cap: need free_bytes >= 0, ceiling > 0 and 0 < fraction < 1, got "
                         f"{free_bytes}, {ceiling}, {fraction}")
    return min(ceiling, int(free_bytes * fraction))


def default_cap_for(path: str | os.PathLike) -> int:
    """The default size cap of a tape written at `path`, from the free space of the folder holding it."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    return default_cap(shutil.disk_usage(folder).free)


def checked_cap(max_bytes: int | str | None) -> int | str | None:
    """max_bytes as a recorder keeps it: DEFAULT as it is, None for no cap (None or 0), else a byte count."""
    if max_bytes == DEFAULT:
        return DEFAULT
    if max_bytes is None or max_bytes == 0:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"record: max_bytes must be a number of bytes, 0 or None (no cap) or "
                         f"{DEFAULT!r}, got {max_bytes!r}")
    return max_bytes


def human_size(n: int) -> str:
    """'512 bytes', '1.5 MiB', '2.0 GiB': a size in bytes for a person (units of 1024, as --max-size)."""
    if n < 1024:
        return f"{n:,} byte{'' if n == 1 else 's'}"
    value, unit = float(n), 0
    while round(value, 1) >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.1f} {_UNITS[unit]}"
