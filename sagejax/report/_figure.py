"""matplotlib without a display, imported only when a figure is drawn."""

import io
import os

from sagejax import storage


def pyplot():
    """matplotlib.pyplot on the Agg (file-only) backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str) -> str:
    """Lays `fig` out, writes it whole to `path` (a file or a gs:// object) in the format its suffix names (PNG
    without one), frees it and returns `path`."""
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format=os.path.splitext(os.fspath(path))[1][1:].lower() or "png")
    pyplot().close(fig)
    storage.write_bytes(path, image.getvalue())
    return path
