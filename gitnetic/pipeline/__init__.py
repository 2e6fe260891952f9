"""Whole-pipeline helpers: sizing a run to a corpus and a budget (``init``)."""
