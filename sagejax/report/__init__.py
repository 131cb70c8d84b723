"""What commands report: figures (matplotlib, written as PNG files without a display), markdown tables with
mean ± std cells (`tables`), and one writer of a command's json / markdown / figure outputs (`write_outputs`)."""

from sagejax.report._figure import pyplot
from sagejax.report._figure import save as save_figure
from sagejax.report.benchmark_plot import benchmark_plot
from sagejax.report.outputs import write_outputs
from sagejax.report.panel_figure import saliency_panels
from sagejax.report.retrieval_plot import pr_plot
from sagejax.report.robustness_plot import corruption_bars, robustness_plot

__all__ = [
    "benchmark_plot",
    "corruption_bars",
    "pr_plot",
    "pyplot",
    "robustness_plot",
    "saliency_panels",
    "save_figure",
    "write_outputs",
]
