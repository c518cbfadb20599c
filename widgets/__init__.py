"""Reusable Qt widgets fed with plain data; they never import `app`."""
