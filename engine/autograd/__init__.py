"""Autograd: functions (graph nodes), grad mode and the backward scheduler."""
