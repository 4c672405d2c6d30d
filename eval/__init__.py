"""Grounding benchmark: question sets, metrics, the runner and its reports."""
