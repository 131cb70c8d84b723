"""Figures (matplotlib, written as PNG files without a display)."""

from sagejax.report.benchmark import benchmark_plot

__all__ = ["benchmark_plot"]
