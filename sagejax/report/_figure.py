"""matplotlib without a display, imported only when a figure is drawn."""


def pyplot():
    """matplotlib.pyplot on the Agg (file-only) backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str) -> str:
    """Lays `fig` out, writes it to `path`, frees it and returns `path`."""
    fig.tight_layout()
    fig.savefig(path)
    pyplot().close(fig)
    return path
