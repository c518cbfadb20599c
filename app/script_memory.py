"""The arguments last used with each script ("Debug Script…"), kept in the app's QSettings."""

from __future__ import annotations

import json

KEY = "scripts/arguments"
MAX_SCRIPTS = 64  # scripts remembered; the least recently debugged are forgotten first


def remembered_arguments(settings) -> dict[str, str]:
    """Absolute script path -> the arguments last used with it, least recent first."""
    # a settings file edited by hand may hold anything: what is not a JSON object of texts is left out
    try:
        value = json.loads(str(settings.value(KEY, "") or "{}"))
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {p: a for p, a in value.items() if isinstance(p, str) and isinstance(a, str)}


def remember_arguments(settings, path: str, arguments: str) -> None:
    """Keep `arguments` as the last used with the script at `path` (an absolute path)."""
    memory = remembered_arguments(settings)
    memory.pop(path, None)
    if arguments:
        memory[path] = arguments
    kept = dict(list(memory.items())[-MAX_SCRIPTS:])
    settings.setValue(KEY, json.dumps(kept))
