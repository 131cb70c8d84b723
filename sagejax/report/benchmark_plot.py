"""The benchmark harness's plot: source images/s of each method against the swept axis."""

from __future__ import annotations

from sagejax.report._figure import pyplot, save

SWEPT = ("num_devices", "batch_size", "image_size")  # the x axis: the first of these with several values


def benchmark_plot(results: list[dict], path: str) -> str:
    """Source images/s per row, a line per method/model/dtype over the first swept axis of SWEPT (devices, batch,
    image size), or one bar per row when nothing is swept; writes `path` and returns it."""
    plt = pyplot()
    axis = next((key for key in SWEPT if len({r[key] for r in results}) > 1), None)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    if axis is None:
        ax.barh(
            [f"{r['label']} · {r['model']} {r['dtype']}" for r in results], [r["source_images_per_s"] for r in results]
        )
        ax.set_xlabel("source images / s")
        ax.invert_yaxis()
    else:
        lines: dict[str, list[dict]] = {}
        for r in results:
            fixed = [f"{key}={r[key]}" for key in SWEPT if key != axis and len({o[key] for o in results}) > 1]
            lines.setdefault(" · ".join([r["label"], r["model"], r["dtype"], *fixed]), []).append(r)
        for name, rows in lines.items():
            rows = sorted(rows, key=lambda r: r[axis])
            ax.plot([r[axis] for r in rows], [r["source_images_per_s"] for r in rows], marker="o", label=name)
        ax.set_xlabel(axis.replace("_", " "))
        ax.set_ylabel("source images / s")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
    device = results[0]["device"]
    ax.set_title(f"train step throughput ({device})", fontsize=9)
    ax.grid(alpha=0.3)
    return save(fig, path)
