"""The `tapescope` command line (also `python main.py`).

    tapescope                                   open the app on its built-in demo
    tapescope run [--run] [--record TAPE] SCRIPT.py [ARGS]   debug a script in the app (paused on entry)
    tapescope record SCRIPT.py [ARGS] -o run.tape [--force] [--capture structure|summary|values] [--max-size 500M|none]
    tapescope info run.tape [--json]
    tapescope export run.tape --format json|dot|perfetto -o OUT|- [--iteration N]
    tapescope open run.tape

Exit codes: 0 success, 1 the recorded script failed (or Ctrl-C or SIGTERM stopped a command), 2 bad usage or a bad
tape. A damaged tape is a bad tape: info still prints what it could read (and, first, what it could not), export
still writes it (and says on stderr what it left out), and both exit with 2.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import runpy
import signal
import sys
import traceback

CAPTURES = ("structure", "summary", "values")  # engine.debug.records.CAPTURES, without importing the engine
FORMATS = ("json", "dot", "perfetto")  # engine.tape.export.FORMATS
_RECORD_OPTIONS = {"-o": "output", "--output": "output", "--capture": "capture", "--max-size": "max_size"}
_RECORD_FLAGS = frozenset({"--force"})  # record's options without a value
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?")


class _Usage(Exception):
    """Bad usage found after argparse: one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `tapescope` command."""
    parser = argparse.ArgumentParser(
        prog="tapescope", description="A visual debugger for dynamic computational graphs.",
        allow_abbrev=False,
        epilog="Exit codes: 0 success, 1 the recorded script failed (or Ctrl-C or SIGTERM stopped a command), "
               "2 bad usage or a bad tape (a damaged one: info prints, and export writes, what could be read).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = functools.partial(sub.add_parser, allow_abbrev=False)  # no command takes `--out` for `--output`
    rec = command(
        "record", help="run a script under the recorder, headless",
        usage="tapescope record SCRIPT.py [SCRIPT ARGS] -o run.tape [--force] [--capture TIER] [--max-size SIZE]",
        description="Run SCRIPT.py as `python SCRIPT.py ARGS` would, recording every engine event, and what it "
                    "prints (shown as usual), to a tape. The options may come before or after the script; after a "
                    "`--`, everything goes to the script.",
    )
    rec.add_argument("-o", "--output", required=True, metavar="TAPE", help="the tape to write")
    rec.add_argument("--force", action="store_true", help="overwrite TAPE if it exists (else it is refused)")
    rec.add_argument("--capture", choices=CAPTURES, default="summary",
                     help="structure: ops and shapes; summary: plus statistics of every tensor and alerts "
                          "(where NaN/Inf started, gradient norms) (default); values: plus small tensors' values")
    rec.add_argument("--max-size", type=_size, metavar="SIZE",
                     help="drop values past 60%% of SIZE, summaries past 80%%, stop recording at SIZE "
                          "(e.g. 500M, 2G; units of 1024). Default: the smaller of 10G and half the free "
                          "space of the tape's disk at the start. 0 or none: no cap")
    rec.add_argument("script", metavar="SCRIPT.py")
    info = command("info", help="summarise a tape",
                   description="Print what a tape holds: who wrote it, its iterations, events, edits and alerts.")
    info.add_argument("tape", metavar="TAPE", help="the .tape file")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    exp = command("export", help="export a tape to JSON, Graphviz DOT or a Perfetto trace",
                  description="Export a tape: json (every event with its summaries), dot (one iteration's graph, "
                              "for Graphviz) or perfetto (a trace for ui.perfetto.dev).")
    exp.add_argument("tape", metavar="TAPE", help="the .tape file")
    exp.add_argument("--format", choices=FORMATS, required=True, help="what to write")
    exp.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write (-: standard output)")
    exp.add_argument("--iteration", type=int, metavar="N", help="the iteration to draw (dot only; default: the "
                     "last with a forward and a backward, else the last with ops)")
    run = command(
        "run", help="debug a script in the app",
        usage="tapescope run [--run] [--record TAPE] SCRIPT.py [SCRIPT ARGS]",
        description="Open the app on SCRIPT.py, run as `python SCRIPT.py ARGS` would, paused before it "
                    "starts (F11 steps op by op, F5 runs). Our options come before the script; everything "
                    "after it goes to the script.",
    )
    run.add_argument("--run", action="store_true",
                     help="don't pause on entry: run until the first engine.debug.breakpoint()")
    run.add_argument("--record", metavar="TAPE", help="also record the session to this tape")
    run.add_argument("script", metavar="SCRIPT.py")
    run.add_argument("script_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    op = command("open", help="open a tape in the app", description="Open a tape in the app, to replay and scrub it.")
    op.add_argument("tape", metavar="TAPE", help="the .tape file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; with no arguments open the app on its built-in demo."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command_line, script_args = ["tapescope", *argv], []
    if argv[:1] == ["record"]:
        argv, script_args = _split_record(argv)
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"tapescope {version('tapescope')}")
        return 0
    if args.command is None:
        from app.window import run_app

        return run_app()
    from engine.tape.errors import TapeError

    try:
        if args.command == "record":
            return _record(args, script_args, command_line)
        if args.command == "info":
            return _info(args)
        if args.command == "export":
            return _export(args)
        if args.command == "run":
            return _run(args)
        return _open(args)
    except (TapeError, _Usage) as err:
        print(f"tapescope {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C during info or export: one line, not a traceback; an export is all or nothing
        print(f"tapescope {args.command}: interrupted by Ctrl-C", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `tapescope info run.tape | head -3`: the reader took what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit is quiet too
        return 0


# ---- record ---------------------------------------------------------------------------------------
def _split_record(argv: list[str]) -> tuple[list[str], list[str]]:
    """(tokens for argparse, the script's own arguments): our options may follow the script."""
    i = 1
    while i < len(argv):
        token = argv[i]
        if token == "--":
            i += 1
            break
        if token in _RECORD_OPTIONS:
            i += 2
        elif token.startswith("-"):
            i += 1  # -o=..., --capture=..., -h: argparse's to judge
        else:
            break
    if i >= len(argv):
        return argv, []
    ours, rest = [t for t in argv[:i] if t != "--"] + [argv[i]], argv[i + 1:]
    script_args = []
    j = 0
    while j < len(rest):
        token = rest[j]
        name = token.split("=", 1)[0]
        if token == "--":
            script_args += rest[j + 1:]
            break
        if token in _RECORD_OPTIONS:  # at the very end, without its value: argparse's to refuse
            ours += rest[j:j + 2]
            j += 2
            continue
        if token in _RECORD_FLAGS:
            ours.append(token)
            j += 1
            continue
        if (name in _RECORD_OPTIONS and "=" in token) or (token.startswith("-o") and len(token) > 2 and
                                                          not token.startswith("--")):
            ours.append(token)
        else:
            script_args.append(token)
        j += 1
    return ours, script_args


def _size(text: str) -> int:
    """'500M', '2G', '1000000': a size in bytes; '0' or 'none': 0, no cap."""
    if text.strip().lower() == "none":
        return 0
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 500M or 2G; 0 or none for no cap)")
    scale = 1024 ** " KMGT".index(m.group(2).upper() or " ")
    size = int(float(m.group(1)) * scale)
    if size <= 0 and float(m.group(1)) > 0:
        raise argparse.ArgumentTypeError(f"a size cap must be at least one byte, not {text!r} "
                                         f"(0 or none: no cap)")
    return size


def _script(path: str) -> str:
    """The absolute path of the script to run; _Usage when it is not a file."""
    script = os.path.abspath(path)
    if os.path.isdir(script):
        raise _Usage(f"not a script: {path} is a folder")
    if not os.path.isfile(script):
        raise _Usage(f"no such script: {path}")
    return script


def _record(args, script_args: list[str], command_line: list[str]) -> int:
    script = _script(args.script)
    if os.path.isfile(args.output) and not args.force:  # a recording is often the only one of its run
        raise _Usage(f"{args.output} exists: record with --force to overwrite it, or choose another -o")
    from engine.tape import record
    from engine.tape.cap import DEFAULT, human_size
    from engine.tape.info import counted
    from engine.tape.output import tee_output
    from engine.tape.writer import stopped_by

    max_bytes = DEFAULT if args.max_size is None else args.max_size
    recorder = record(args.output, args.capture, max_bytes=max_bytes, command_line=command_line)

    def ended(failure: BaseException) -> None:
        """The tape says the run did not finish, and where it raised, with that line's source."""
        recorder.debugger.explain_failure(failure)  # (an in-place error's message names its lines: an alert too)
        if terminated:  # its status is set below
            return
        status = stopped_by(failure)
        if status is not None and recorder.status == "recording":
            recorder.status = status
            recorder.keep_failure(failure)

    try:
        with _terminated_as_exit() as terminated, tee_output(recorder):  # its prints, traceback too, on the tape
            code = _run_script(script, script_args, ended)
        if terminated:  # (a script that caught the exit SIGTERM raised ran on, but was told to stop)
            recorder.status = "terminated by SIGTERM"
    finally:
        recorder.close()
    if recorder.cap_reached:  # the status names the cap
        end = f" ({recorder.status}: the rest of the run was not recorded; --max-size sets the cap)"
    else:
        end = "" if recorder.status == "complete" else f" ({recorder.status})"
        end += "; no size cap" if recorder.max_bytes is None else f"; size cap {human_size(recorder.max_bytes)}"
    _tell(f"tapescope record: {counted(recorder.events, 'event')} ({args.capture}) written to {args.output}{end}",
          *([f"  {_why_empty()}"] if not recorder.events else []),
          *(f"  {line}" for line in _alert_summary(args.output, args.capture)))
    return code


def _tell(*lines: str) -> None:
    """Print `lines` on stderr; where nobody reads it any more (a closed pipe: `2>&1 | head`), say nothing, so
    the exit code stays the script's."""
    try:
        for line in lines:
            print(line, file=sys.stderr, flush=True)
    except BrokenPipeError:
        _quiet(sys.stderr)


def _quiet(stream) -> None:
    """Send what is still written to `stream` (whose reader has gone) to nowhere, the flush at exit too."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _why_empty() -> str:
    """What to check when a script ran and the tape holds no event."""
    if "torch" in sys.modules:
        return ("the script imported PyTorch, whose ops tapescope cannot see: import the engine in its place "
                "(import engine as torch, import engine.nn as nn)")
    return "the script ran no engine op, so there was nothing to record: does it build and run its model with engine?"


SUMMARY_WIDTH = 100  # the widest line the record summary prints, indent included


def _alert_summary(path: str, capture: str) -> list[str]:
    """The alerts on the tape just written, under the record line: a header counting them per kind, then one
    line per kind saying where it first appeared (iteration, op or layer, source line); none without alerts.
    Non-finite values come first: the first NaN is what a person looks for."""
    import engine.tape
    from engine.debug.alert_text import KEY_NAMES, kind_name
    from engine.tape.codec import printable
    from engine.tape.info import counted

    try:
        with engine.tape.open(path) as tape:
            alerts = tape.alerts()
    except engine.tape.TapeError as err:
        return [f"alerts not read back: {err}"]
    if not alerts:  # quiet when all is well; a structure tape was not checked, which 0 alerts would hide
        return ["alerts: none checked (--capture structure records no values)"] if capture == "structure" else []
    kinds: dict[str, list] = {}
    for alert in alerts:
        kinds.setdefault(alert.kind, []).append(alert)
    order = sorted(kinds, key=lambda kind: not kind.startswith("nonfinite"))  # NaN first, then as they came
    names = {kind: printable(kind_name(kind)) for kind in order}
    counts = [f"{names[kind]} \u00d7{len(kinds[kind]):,}" for kind in order]
    if len(kinds) == 1:  # "1 alert of 1 kind: NaN/Inf (forward) x1" said it three times
        lines = [f"{counted(len(alerts), 'alert')}: {names[order[0]]}"]
    else:
        lines = _wrapped(f"{counted(len(alerts), 'alert')} of {counted(len(kinds), 'kind')}: ", counts)
    name_width = max(map(len, names.values()))
    it_width = max(len(f"{kinds[kind][0].iteration:,}") for kind in order)
    for kind in order:
        a = kinds[kind][0]
        if a.op:  # an op's alert: the op, its module
            what, path, end = printable(a.op) + (" in " if a.module else ""), printable(a.module), ""
        else:  # a layer's (its updates against its weights) or a parameter's, at an optimizer step
            what, path, end = f"{KEY_NAMES.get(kind, 'parameter')} '", printable(a.key), "'"
        source = f" ({printable(os.path.basename(a.file))}:{a.line})" if a.file else ""
        head = f"  {names[kind]:<{name_width}}  first at iteration {a.iteration:<{it_width},}  "
        room = SUMMARY_WIDTH - 2 - len(head) - len(what) - len(end) - len(source)  # 2: the caller's indent
        if len(path) > room:  # a deep module path gives way in its middle: its root and its last names stay
            keep = max(room - 1, 12)
            path = path[:keep // 3] + "\u2026" + path[keep // 3 - keep:]
        where = what + path + end
        lines.append(head + where + source)
    return lines


def _wrapped(head: str, items: list[str]) -> list[str]:
    """`head` and the comma-separated `items`, in lines no wider than the summary's (the caller indents by 2),
    a continued line lined up under the first item."""
    indent = " " * len(head)
    lines, line = [], head
    for n, item in enumerate(items):
        text = item + ("," if n < len(items) - 1 else "")
        if line not in (head, indent) and 2 + len(line) + 1 + len(text) > SUMMARY_WIDTH:
            lines.append(line)
            line = indent
        line += ("" if line in (head, indent) else " ") + text
    return [*lines, line]


class _Terminated(SystemExit):
    """SIGTERM (a plain `kill`), raised in the script so that the tape is closed as after Ctrl-C."""


@contextlib.contextmanager
def _terminated_as_exit():
    """While recording: SIGTERM ends the script with an exit the recorder survives (Python's own default
    ends the process at once, leaving the tape unclosed); the list it yields says whether that happened.
    A script that sets its own SIGTERM handler keeps it."""
    seen: list[int] = []

    def handler(signum, frame):
        seen.append(signum)
        raise _Terminated(1)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield seen
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)


def _run_script(path: str, argv: list[str], ended) -> int:
    """Run a script as `python path *argv` would: 0, or 1 with the script's own traceback printed. `ended(error)`
    first, before anything is written (a recording keeps how the run ended, and a debugger's explain_failure may
    add to the message): writing the traceback may fail, as to a closed pipe."""
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    try:
        runpy.run_path(path, run_name="__main__")
        return 0
    except SystemExit as exit_:
        if exit_.code is None or exit_.code == 0:
            return 0
        ended(exit_)
        if not isinstance(exit_.code, int):
            _tell(str(exit_.code))
        return 1
    except BaseException as err:  # the script's failure, shown as Python would show it
        ended(err)
        tb = err.__traceback__
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != path:
            tb = tb.tb_next  # drop our frames and runpy's above the script's own
        _tell("".join(traceback.format_exception(type(err), err, tb)).rstrip("\n"))  # one write: kept whole
        return 1
    finally:
        sys.argv, sys.path[:] = old_argv, old_path


# ---- info, export, open ---------------------------------------------------------------------------
def _info(args) -> int:
    import engine.tape
    from engine.tape.info import describe, tape_info

    with engine.tape.open(args.tape) as tape:
        info = tape_info(tape)
    print(json.dumps(info, allow_nan=False) if args.json else describe(info))
    if info["damage"]:
        print(f"tapescope info: {args.tape} is damaged: {'; '.join(info['damage'])}", file=sys.stderr)
        return 2
    return 0


def _export(args) -> int:
    import engine.tape
    from engine.tape.damage import lost_parts, require_events
    from engine.tape.export import export, progress_total

    with engine.tape.open(args.tape) as tape:
        if args.iteration is not None:
            _check_iteration(tape, args)
        total = progress_total(tape, args.format, args.iteration)
        try:
            with _output(args.output, args.tape) as out, _progress(total, f"export {args.format}") as bar:
                export(tape, args.format, out, iteration=args.iteration, progress=bar.update)
                require_events(tape)  # nothing to salvage: no file, as for a file that is no tape
        except OSError as err:
            raise _Usage(f"cannot write {args.output}: {err.strerror or err}") from None
        lost = lost_parts(tape, events_read=args.format != "dot")  # DOT reads one iteration's
    if lost:
        written = "the output" if args.output == "-" else args.output
        print(f"tapescope export: {args.tape} is damaged: {written} holds what could be read; left out: "
              f"{'; '.join(lost)}", file=sys.stderr)
        return 2
    return 0


def _check_iteration(tape, args) -> None:
    """_Usage unless --iteration names an iteration on the tape and the format draws one."""
    if args.format != "dot":
        raise _Usage(f"--iteration applies to --format dot only ({args.format} exports the whole tape)")
    if tape.iteration(args.iteration) is None:
        counts = tape.counts()
        held = (f"iterations {counts['first_iteration']}..{counts['last_iteration']}" if counts["iterations"]
                else "no iterations")
        raise _Usage(f"{args.tape} has no iteration {args.iteration} (it holds {held})")


def _output(path: str, tape: str):
    """The text file an export is written to, whole or not at all (engine.tape.export.whole_file); "-": stdout."""
    from engine.tape.export import whole_file

    if path == "-":  # as for other tools: a file named "-" is written as ./-
        return contextlib.nullcontext(sys.stdout)
    if not path:
        raise _Usage("cannot write the export: the output path is empty")
    if os.path.exists(path) and os.path.samefile(path, tape):
        raise _Usage(f"cannot write {path}: it is the tape being exported")
    return whole_file(path)


def _progress(total: int, desc: str):
    """A tqdm progress bar on stderr, shown only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="event", unit_scale=True, file=sys.stderr,
                disable=not sys.stderr.isatty(), leave=False)


def _open(args) -> int:
    from app.replay import ReplaySession

    replay = ReplaySession(args.tape)  # reads the tape's index: a file that is no tape fails here, before any window
    try:
        from app.window import Launch, run_app

        return run_app(Launch("tape", os.path.abspath(args.tape), replay=replay))
    finally:
        replay.close()


def _run(args) -> int:
    script = _script(args.script)
    from app.window import Launch, run_app

    record = os.path.abspath(args.record) if args.record else None
    return run_app(Launch("script", script, tuple(args.script_args), run=args.run, record=record))


if __name__ == "__main__":
    sys.exit(main())
