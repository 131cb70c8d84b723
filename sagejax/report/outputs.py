"""What a command leaves in its output folder: `<name>.json`, `<name>.md` (also printed) and `<name>.png`, each
written whole (to a temporary file, then renamed), so an interrupted command never leaves half a table."""

from __future__ import annotations

import json
import os
from collections.abc import Callable


def _replace(path: str, write: Callable[[str], None]) -> None:
    partial = f"{path}.partial{os.path.splitext(path)[1]}"  # keeps the extension, which matplotlib reads
    write(partial)
    os.replace(partial, path)


def write_outputs(
    out: str,
    name: str,
    *,
    data=None,
    markdown: str | None = None,
    figure: Callable[[str], object] | None = None,
    show: bool = True,
) -> dict[str, str]:
    """Writes the given outputs into folder `out` as `<name>.json` (`data`, JSON; tuples as lists), `<name>.md`
    (`markdown`, printed too unless `show` is False) and `<name>.png` (`figure(path)` draws it); returns
    {kind: path}."""
    os.makedirs(out, exist_ok=True)
    paths = {}
    if data is not None:
        paths["json"] = os.path.join(out, f"{name}.json")

        def dump(path):
            with open(path, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, default=str)

        _replace(paths["json"], dump)
    if markdown is not None:
        paths["markdown"] = os.path.join(out, f"{name}.md")
        text = markdown if markdown.endswith("\n") else markdown + "\n"

        def write_text(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)

        _replace(paths["markdown"], write_text)
        if show:
            print(text, end="", flush=True)
    if figure is not None:
        paths["figure"] = os.path.join(out, f"{name}.png")
        _replace(paths["figure"], figure)
    return paths
