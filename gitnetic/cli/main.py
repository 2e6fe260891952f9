"""``python -m gitnetic <subcommand>``: dispatch to the stage modules, print user errors as one line.

Subcommand modules are imported only when chosen, so ``corpus`` or ``--help`` never pay for torch.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from gitnetic import __version__
from gitnetic.common.console import setup_logging
from gitnetic.common.cores import sleep_when_idle
from gitnetic.common.errors import DiskFullError, GitneticError
from gitnetic.common.io import disk_full_reason

# name -> (module, one-line summary). Order is pipeline order.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "init": ("gitnetic.cli.init", "write params.yaml sized to your corpus and compute budget"),
    "corpus": ("gitnetic.cli.corpus", "collect source files into train/valid/test JSONL documents"),
    "tokenizer": ("gitnetic.cli.tokenizer", "train a byte-level BPE tokenizer on the train split"),
    "preprocess": ("gitnetic.cli.preprocess", "tokenize and binarize splits into MMIDIDX .bin/.idx shards"),
    "train": ("gitnetic.cli.train", "train a task (e.g. transformer-task) with Lightning"),
    "evaluate": ("gitnetic.cli.evaluate", "held-out loss/perplexity of a checkpoint, as JSON"),
    "export": ("gitnetic.cli.export", "convert a checkpoint into a from_pretrained-ready HF folder"),
    "benchmark": ("gitnetic.cli.benchmark", "HumanEval pass@k of a model, its code run in a sandbox"),
    "summary": (
        "gitnetic.cli.summary",
        "summarise a pipeline run: perplexity vs baseline, paths, next steps",
    ),
    "generate": ("gitnetic.cli.generate", "complete or infill code with a trained model (streamed)"),
}


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [
        "usage: python -m gitnetic <subcommand> [options]",
        "",
        "Train transformer language models on source code: corpus -> tokenizer -> preprocess -> train -> "
        "evaluate/export.",
        "",
        "subcommands:",
    ]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "Run 'python -m gitnetic <subcommand> --help' for the flags of one subcommand."]
    return "\n".join(lines)


def _import_subcommand(module: str, *, whole_process: bool) -> ModuleType:
    """Import a subcommand's module; when this process is the command, with the cyclic GC off, and then
    freeze what the import left (``main`` freezes the rest when the command ends).

    Why: torch, transformers and Lightning create millions of long-lived objects as they load, and none
    of them is garbage. The collector rescanned them over and over while they loaded, again in every full
    collection of the run, and once more in the interpreter's collections at exit: about 1.5 s of the
    5 s it takes train, evaluate or export to start and stop, paid by every pipeline stage and DDP rank.
    Frozen objects are never collected, which is harmless for a process that ends with the command; a
    caller that runs ``main(argv)`` in its own process (the tests) keeps its collector as it was.
    """
    if not whole_process:
        return importlib.import_module(module)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(module)
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if args[0] in {"--version", "-V"}:
        print(f"gitnetic {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(
            f"gitnetic: error: unknown subcommand {name!r}; choose one of: {', '.join(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    sleep_when_idle()  # before torch loads: idle OpenMP threads sleep instead of spinning on shared cores
    setup_logging(logging.INFO)
    module = _import_subcommand(SUBCOMMANDS[name][0], whole_process=argv is None)
    try:
        return int(module.main(rest) or 0)
    except GitneticError as exc:
        # exit_code: 75 for a run stopped by a signal with a checkpoint (resumable), 2 for bad input
        code = int(getattr(exc, "exit_code", 2))
        if getattr(exc, "report", True):
            print(f"gitnetic {name}: {'' if code != 2 else 'error: '}{exc}", file=sys.stderr)
        return code
    except OSError as exc:
        reason = disk_full_reason(exc)
        if reason is not None:  # a write outside the atomic writers (which name their output themselves)
            print(
                f"gitnetic {name}: error: {DiskFullError(exc.filename or 'the outputs', reason)}",
                file=sys.stderr,
            )
            return 2
        if exc.filename is None:
            raise  # not about a path the user can fix: keep the traceback for the bug report
        # an output folder under a file, a read-only mount, a full disk: the path and the reason suffice
        print(
            f"gitnetic {name}: error: cannot use {exc.filename}: {exc.strerror or exc}; check the path, "
            "that its folder is writable and that the disk has space",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"gitnetic {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:  # what the run left too (lazy imports, the model): the exit's collections skip it
            gc.freeze()


if __name__ == "__main__":
    raise SystemExit(main())
