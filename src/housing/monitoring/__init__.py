"""Monitoring: data drift (Evidently), live accuracy from feedback, simulated traffic."""
