"""The one error a tape raises."""


class TapeError(Exception):
    """A tape that cannot be written or read: not a tape, damaged, too new, or a failed write."""
