"""Evaluation of every stage and the run's report."""
