"""What a command leaves in its output folder (a path or a gs:// folder): `<name>.json`, `<name>.md` (also printed)
and `<name>.png`, each written whole, so an interrupted command never leaves half a table."""

from __future__ import annotations

import json
from collections.abc import Callable

from sagejax import storage


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
    folder = storage.path(out)
    paths = {}
    if data is not None:
        paths["json"] = str(storage.write_text(folder / f"{name}.json", json.dumps(data, indent=1, default=str)))
    if markdown is not None:
        text = markdown if markdown.endswith("\n") else markdown + "\n"
        paths["markdown"] = str(storage.write_text(folder / f"{name}.md", text))
        if show:
            print(text, end="", flush=True)
    if figure is not None:
        paths["figure"] = str(folder / f"{name}.png")
        figure(paths["figure"])
    return paths
