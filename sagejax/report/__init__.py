"""Figures (matplotlib, written as PNG files without a display)."""

from sagejax.report.benchmark_plot import benchmark_plot
from sagejax.report.panel_figure import saliency_panels
from sagejax.report.retrieval_plot import pr_plot
from sagejax.report.robustness_plot import corruption_bars, robustness_plot

__all__ = ["benchmark_plot", "corruption_bars", "pr_plot", "robustness_plot", "saliency_panels"]
