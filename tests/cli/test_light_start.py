"""The data stages, and the ``--help`` and flag errors of every stage but train, start without torch,
Lightning or (but the tokenizer stage) transformers.

Why a test: torch and Lightning cost seconds and hundreds of MB per process, and every DVC/Snakemake
run starts these stages; one module-level import in the wrong place (the tokenizer stage once loaded
torch for the names of the FIM tokens) brings the cost back without failing anything else. train is
left out: its flags include every ``lightning.Trainer`` argument, read from Lightning itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import child_env

HEAVY = ("torch", "lightning", "transformers")

# Runs each argv through the real CLI entry point in one fresh interpreter and reports, per argv, the
# heavy packages it loaded that were not loaded before it (exit status included: --help exits 0).
PROBE = """
import json, sys
from gitnetic.cli.main import main

heavy = {heavy!r}
report = []
for argv in json.loads(sys.argv[1]):
    before = {{m for m in heavy if m in sys.modules}}
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    report.append([argv[0], code, sorted(m for m in heavy if m in sys.modules and m not in before)])
print(json.dumps(report))
"""


def test_data_stages_and_help_never_load_torch(tmp_path: Path, tiny_corpus_dir: Path, tiny_tokenizer: Path):
    stages = "init corpus tokenizer preprocess evaluate export generate summary benchmark".split()
    helps = [[name, "--help"] for name in stages]
    # a bad number is refused when parsed, before evaluate loads the model (exit 2, one line)
    refused = ["evaluate", "--checkpoint", "c", "--config_path", "m.yaml", "--tokenizer_path", "t",
               "--data_prefix", "p", "--batch_size", "0"]  # fmt: skip
    runs = [
        ["corpus", "--source", "dir", "--path", str(tiny_corpus_dir), "--out_dir", "corpus",
         "--splits.valid_ratio", "0.2", "--splits.test_ratio", "0.2", "--splits.seed", "1"],
        # before the tokenizer stage, which loads transformers (to save the HF files): preprocess must not
        ["preprocess", "--tokenizer_path", str(tiny_tokenizer), "--input_dir", "corpus", "--output_dir", "bin",
         "--workers", "1"],
        # --fim_tokens: the tokens' names once came from gitnetic.data.loading.fim, which loads torch
        ["tokenizer", "--train_file", "corpus/train.jsonl", "--vocab_size", "300", "--fim_tokens", "true",
         "--out_dir", "tokenizer"],
    ]  # fmt: skip
    argvs = [["--help"], *helps, refused, *runs]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(argvs)],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [name for name, _, _ in report] == [argv[0] for argv in argvs]
    assert [code for _, code, _ in report] == [0] * (1 + len(helps)) + [2] + [0] * len(runs), report
    assert (tmp_path / "bin" / "train.bin").stat().st_size > 0 and (tmp_path / "tokenizer").is_dir()
    loaded = {name if name != "--help" else "main": mods for name, _, mods in report[: 1 + len(helps)]}
    loaded["evaluate refused"] = report[1 + len(helps)][2]
    loaded.update({f"{name} run": mods for name, _, mods in report[2 + len(helps) :]})
    allowed = {"tokenizer run": ["transformers"]}  # PreTrainedTokenizerFast writes the HF folder; no torch
    assert {step: mods for step, mods in loaded.items() if mods != allowed.get(step, [])} == {}, loaded
