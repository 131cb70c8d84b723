"""What commands report: figures (matplotlib, written as PNG files without a display), markdown tables with
mean ± std cells (`tables`), and one writer of a command's json / markdown / figure outputs (`write_outputs`)."""

from sagejax.report.benchmark_plot import benchmark_plot
from sagejax.report.outputs import write_outputs
from sagejax.report.panel_figure import saliency_panels
from sagejax.report.retrieval_plot import pr_plot
from sagejax.report.robustness_plot import corruption_bars, robustness_plot

__all__ = ["benchmark_plot", "corruption_bars", "pr_plot", "robustness_plot", "saliency_panels", "write_outputs"]
