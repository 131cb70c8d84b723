"""matplotlib without a display, imported only when a figure is drawn."""

import io

from sagejax import storage


def pyplot():
    """matplotlib.pyplot on the Agg (file-only) backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str) -> str:
    """Lays `fig` out, writes it whole to `path` (a file or a gs:// object) as a PNG, frees it and returns `path`."""
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    pyplot().close(fig)
    storage.write_bytes(path, image.getvalue())
    return path
