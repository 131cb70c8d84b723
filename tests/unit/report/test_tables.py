"""One markdown-table writer and one "mean ± std" cell for every command: a single value prints alone."""

import pytest

from sagejax.report import tables


def test_mean_std_cells():
    assert tables.mean_std([0.5, 0.7], scale=100) == "60.0 ± 10.0"  # population std, as over seeds
    assert tables.mean_std([0.833], scale=100) == "83.3"  # one seed: no "± 0.0"
    assert tables.mean_std([], scale=100) == "—"
    assert tables.mean_std([1.0, 2.0], digits=3) == "1.500 ± 0.500"


def test_markdown_table_and_bad_rows():
    assert tables.markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
    with pytest.raises(ValueError, match="a table row has 1 cells for 2 columns"):
        tables.markdown_table(["a", "b"], [[1]])


def test_write_outputs_writes_json_markdown_and_figure_whole(tmp_path, capsys):
    from sagejax.report import write_outputs

    drawn = []

    def figure(path):
        drawn.append(path)
        with open(path, "wb") as f:
            f.write(b"png")

    paths = write_outputs(str(tmp_path / "out"), "table", data={"a": (1, 2)}, markdown="| a |", figure=figure)
    assert (tmp_path / "out" / "table.json").read_text().replace("\n", "").replace(" ", "") == '{"a":[1,2]}'
    assert (tmp_path / "out" / "table.md").read_text() == "| a |\n" and capsys.readouterr().out == "| a |\n"
    assert paths["figure"].endswith("table.png") and (tmp_path / "out" / "table.png").read_bytes() == b"png"
    assert drawn[0].endswith(".png") and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "table.json",
        "table.md",
        "table.png",
    ]
