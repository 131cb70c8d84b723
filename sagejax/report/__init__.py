"""Figures (matplotlib, written as PNG files without a display)."""

from sagejax.report.benchmark import benchmark_plot
from sagejax.report.panels import saliency_panels
from sagejax.report.retrieval import pr_plot
from sagejax.report.robustness import corruption_bars, robustness_plot

__all__ = ["benchmark_plot", "corruption_bars", "pr_plot", "robustness_plot", "saliency_panels"]
