"""The .tape file format: one SQLite database, its tables, and the codes stored in them.

docs/tape-format.md describes the same schema for people; FORMAT_VERSION changes whenever a reader of
the previous version could misread a new tape.
"""

from __future__ import annotations

FORMAT_VERSION = 2  # 2: optimizer steps also hold gradient norms (format 1 tapes are read too)
SQLITE_MAGIC = b"SQLite format 3\x00"

# events.kind
OP, BACKWARD, MODULE_ENTER, MODULE_EXIT, OPTIMIZER, EDIT, ALERT, MARK = range(1, 9)
KIND_NAMES = {OP: "op", BACKWARD: "backward", MODULE_ENTER: "module_enter", MODULE_EXIT: "module_exit",
              OPTIMIZER: "optimizer", EDIT: "edit", ALERT: "alert", MARK: "iteration"}
# events.phase, in the order of engine.debug.records.PHASES
PHASES = ("forward", "backward", "optimizer")

_SUMMARY = ("layout INTEGER NOT NULL", "numel INTEGER NOT NULL", "min REAL", "max REAL", "mean REAL",
            "std REAL", "norm REAL", "nan_count INTEGER NOT NULL", "inf_count INTEGER NOT NULL",
            "zero_count INTEGER NOT NULL", "counts BLOB NOT NULL", "lo REAL", "hi REAL",
            "samples BLOB NOT NULL", "stride INTEGER NOT NULL")

# table -> column definitions; SQLite stores NaN as NULL, so REAL columns may be NULL
TABLES: dict[str, tuple[str, ...]] = {
    "meta": ("key TEXT PRIMARY KEY", "value TEXT NOT NULL"),
    # an op as it ran (stable key and signature), or a module; a backward node points to its forward's
    "nodes": ("id INTEGER PRIMARY KEY", "kind TEXT NOT NULL", "key TEXT NOT NULL", "op TEXT NOT NULL",
              "module TEXT", "input_shapes TEXT", "output_shape TEXT", "dtype TEXT", "device TEXT",
              "requires_grad INTEGER"),
    "layouts": ("id INTEGER PRIMARY KEY", "shape TEXT NOT NULL", "dtype TEXT NOT NULL",
                "device TEXT NOT NULL"),
    "frames": ("id INTEGER PRIMARY KEY", "file TEXT NOT NULL", "line INTEGER NOT NULL",
               "function TEXT NOT NULL", "text TEXT NOT NULL"),
    "stacks": ("id INTEGER PRIMARY KEY", "source INTEGER", "frames TEXT NOT NULL"),
    "sources": ("file TEXT PRIMARY KEY", "text TEXT", "note TEXT NOT NULL"),
    # events in chunks of up to 4096, columnar: see engine.tape.codec.CHUNK_COLUMNS and docs/tape-format.md
    "events": ("first_seq INTEGER PRIMARY KEY", "last_seq INTEGER NOT NULL", "count INTEGER NOT NULL",
               "first_iteration INTEGER NOT NULL", "last_iteration INTEGER NOT NULL",
               "columns BLOB NOT NULL"),
    "iterations": ("iteration INTEGER PRIMARY KEY", "first_seq INTEGER NOT NULL", "last_seq INTEGER NOT NULL",
                   "events INTEGER NOT NULL", "ops INTEGER NOT NULL", "backward INTEGER NOT NULL",
                   "t_first INTEGER NOT NULL", "t_last INTEGER NOT NULL"),
    "summaries": ("tensor INTEGER PRIMARY KEY", "seq INTEGER NOT NULL", *_SUMMARY),
    "alert_inputs": ("seq INTEGER NOT NULL", "slot INTEGER NOT NULL", *_SUMMARY),
    "tensor_values": ("tensor INTEGER PRIMARY KEY", "seq INTEGER NOT NULL", "npy BLOB NOT NULL"),
    # names: JSON [[update norm names], [weight norm names], [gradient norm names]] (format 1: the first two);
    # lrs, norms: little-endian float64s, the norms in the order of the names
    "optimizer_steps": ("seq INTEGER PRIMARY KEY", "optimizer TEXT NOT NULL", "names TEXT NOT NULL",
                        "lrs BLOB NOT NULL", "norms BLOB NOT NULL"),
    "edits": ("seq INTEGER PRIMARY KEY", "kind TEXT NOT NULL", "target TEXT NOT NULL", "args TEXT NOT NULL",
              "applied INTEGER NOT NULL", "message TEXT NOT NULL", "iteration INTEGER NOT NULL"),
    "alerts": ("seq INTEGER PRIMARY KEY", "kind TEXT NOT NULL", "message TEXT NOT NULL", "op TEXT NOT NULL",
               "key TEXT NOT NULL", "module TEXT NOT NULL", "forward_seq INTEGER NOT NULL",
               "iteration INTEGER NOT NULL", "file TEXT NOT NULL", "line INTEGER NOT NULL",
               "code TEXT NOT NULL", "value REAL"),
    # a module's own parameters, (tensor id, dotted name) pairs as JSON, from its first recorded call
    "module_params": ("node INTEGER PRIMARY KEY", "params TEXT NOT NULL"),
    # an op node's arguments (reduction, dim, keepdim, ...), [name, value] pairs as JSON; no row: none
    "node_args": ("node INTEGER PRIMARY KEY", "args TEXT NOT NULL"),
    # a parameter's value as an optimizer step left it (after_step 1, seq: the step's event) or as the first
    # recorded forward found it (after_step 0, seq: the event before which it was taken); npy only at "values", and
    # in the last step's rows of a run saved from the app's window
    "parameters": ("name TEXT NOT NULL", "seq INTEGER NOT NULL", "iteration INTEGER NOT NULL",
                   "after_step INTEGER NOT NULL", "tensor INTEGER NOT NULL", *_SUMMARY, "npy BLOB"),
    "drops": ("id INTEGER PRIMARY KEY", "first_seq INTEGER NOT NULL", "last_seq INTEGER NOT NULL",
              "what TEXT NOT NULL", "count INTEGER NOT NULL"),
    # what the recorded script wrote, in order (id): the event current when it was written, "stdout" or
    # "stderr", the text; the first max_output_bytes are kept, the bytes cut are in drops ("output bytes")
    "output": ("id INTEGER PRIMARY KEY", "seq INTEGER NOT NULL", "stream TEXT NOT NULL", "text TEXT NOT NULL"),
    # backward nodes run by autograd.grad() (BackwardEvent.grad_call): every backward event with seq in
    # [first_seq, last_seq] is one; a stretch without another backward node between, cut at batch ends
    "grad_calls": ("first_seq INTEGER PRIMARY KEY", "last_seq INTEGER NOT NULL"),
    # the first backward node of each backward pass (BackwardEvent.pass_start), by its event's seq
    "pass_starts": ("seq INTEGER PRIMARY KEY",),
}
# tables added after format 1 was released: a tape without them is still read (without what they hold)
OPTIONAL = frozenset({"module_params", "parameters", "node_args", "output", "grad_calls", "pass_starts"})
CONSTRAINTS = {"alert_inputs": "PRIMARY KEY (seq, slot)", "parameters": "PRIMARY KEY (name, seq)"}
# Seeking by sequence number uses the chunks' first_seq key; by iteration, the iterations table, whose key
# gives an iteration's sequence range.
INDEXES = ("CREATE INDEX nodes_by_key ON nodes (key)", "CREATE INDEX output_by_seq ON output (seq)")


def columns(table: str) -> tuple[str, ...]:
    """The column names of `table`, in order."""
    return tuple(d.split()[0] for d in TABLES[table])


def create_statements() -> list[str]:
    """The DDL of an empty tape."""
    tables = [f"CREATE TABLE {name} ({', '.join((*cols, *filter(None, [CONSTRAINTS.get(name)])))})"
              for name, cols in TABLES.items()]
    return tables + list(INDEXES)


def insert_statement(table: str) -> str:
    """A parameterised INSERT of one full row into `table`."""
    cols = columns(table)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
