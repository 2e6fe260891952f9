"""Where things are: the repository, its shipped model configs, this Python's tools."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "gitnetic" / "configs"  # the ready model configs shipped with the package
GPT2_TINY = CONFIGS / "gpt2-tiny.yaml"
VENV_BIN = Path(sys.executable).parent
