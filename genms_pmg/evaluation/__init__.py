"""Evaluation of GenMS components against reference data (crystal structure prediction)."""
