"""``summary`` (gitnetic/pipeline/summary.py) on a params file it cannot read as sections of paths."""

from __future__ import annotations

import pytest

from gitnetic.cli import main as cli_main


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- train\n- evaluate\n", "must be a mapping of sections (train:, evaluate:, ...), got a list"),
        ("42\n", "must be a mapping of sections (train:, evaluate:, ...), got an int"),
        ("evaluate:\n  output: [a, b]\n", "evaluate.output must be a path, got a list"),
    ],
)
def test_a_params_file_of_the_wrong_shape_is_one_line(text, message, tmp_path, capsys):
    """Issue 29 item 4: a top-level list was a traceback."""
    params = tmp_path / "params.yaml"
    params.write_text(text)
    assert cli_main.main(["summary", "--params_file", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gitnetic summary: error: params file {params}") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_params_file_without_outputs_yet_is_summarised(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("train: {}\nevaluate: null\n")
    assert cli_main.main(["summary", "--params_file", str(params)]) == 0
    assert "nothing to summarise yet" in capsys.readouterr().out
