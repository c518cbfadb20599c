"""What was last chosen for each script in "Debug Script…" (its arguments, the tape it recorded to), kept
in the app's QSettings.

Two keys, so that a version that knows only the arguments still reads them:
    scripts/arguments   {"/abs/train.py": "--epochs 3"}                    (the first format, unchanged)
    scripts/recording   {"/abs/train.py": ["/abs/runs/train.tape", "summary"]}
"""

from __future__ import annotations

import json

from engine.debug.records import CAPTURES

KEY = "scripts/arguments"
RECORDING_KEY = "scripts/recording"
MAX_SCRIPTS = 64  # scripts remembered; the least recently debugged are forgotten first


def remembered_arguments(settings) -> dict[str, str]:
    """Absolute script path -> the arguments last used with it, least recent first."""
    return {p: a for p, a in _read(settings, KEY).items() if isinstance(a, str)}


def remembered_recordings(settings) -> dict[str, tuple[str, str]]:
    """Absolute script path -> (the tape it was last recorded to, the capture tier), least recent first."""
    return {p: (r[0], r[1]) for p, r in _read(settings, RECORDING_KEY).items()
            if isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and r[0] and r[1] in CAPTURES}


def remember_script(settings, path: str, arguments: str, record: str = "", capture: str = "summary") -> None:
    """Keep what the script at `path` (an absolute path) was last debugged with; `record`: "" when the run
    was not recorded."""
    _keep(settings, KEY, remembered_arguments(settings), path, arguments or None)
    recordings = {p: list(r) for p, r in remembered_recordings(settings).items()}
    _keep(settings, RECORDING_KEY, recordings, path, [record, capture] if record else None)


def _read(settings, key: str) -> dict[str, object]:
    # a settings file edited by hand may hold anything: what is not a JSON object is left out
    try:
        value = json.loads(str(settings.value(key, "") or "{}"))
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {p: v for p, v in value.items() if isinstance(p, str)}


def _keep(settings, key: str, memory: dict[str, object], path: str, value: object) -> None:
    """Store `memory` under `key` with the script's entry set (None: forgotten) as the most recent one."""
    memory.pop(path, None)
    if value is not None:
        memory[path] = value
    settings.setValue(key, json.dumps(dict(list(memory.items())[-MAX_SCRIPTS:])))
