"""One clean console for every stage: each message once, no advertisements, real warnings kept.

What this fixes, precisely (nothing else is silenced):

* Lightning's top-level ``lightning`` logger carries its own ``INFO: ...`` console handler *and*
  propagates to the root handler the CLI installs, so every Lightning message appeared twice.
  :func:`adopt_library_loggers` removes that handler once Lightning is imported, so its records go
  through the root handler alone (same format as gitnetic's own messages).
* Lightning's "Tip: ... litlogger / litmodels" lines are advertisements, not information about the
  run: :class:`NoiseFilter` drops them.
* Lightning 2.6 calls a ``torch.utils._pytree`` API that torch 2.10+ deprecates; the resulting
  ``isinstance(treespec, LeafSpec)`` warning comes from inside Lightning and is not actionable by
  users: :func:`silence_known_warnings` ignores exactly that message from exactly that module; likewise
  the ``is_gradient_checkpointing`` deprecation transformers 5 raises when peft wraps a model (LoRA).

Everything else (user warnings, Lightning's warnings about the run, errors) is shown as before.
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["NoiseFilter", "adopt_library_loggers", "setup_logging", "silence_known_warnings"]

# Messages (log records) that carry no information about the run. Match the start of the message.
_NOISE_PREFIXES = (
    "💡 Tip: For seamless cloud",  # Lightning: litlogger / litmodels advertisements
)
# (message regex, category, module regex) of warnings raised inside libraries that users cannot act on.
_KNOWN_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", Warning, r"lightning\.pytorch\.utilities\._pytree"),
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning, r"transformers\.modeling_utils"),
)
_LIBRARY_LOGGERS = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "lightning_fabric",
    "pytorch_lightning",
)


class NoiseFilter(logging.Filter):
    """Drops log records whose message starts with one of :data:`_NOISE_PREFIXES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to judge
            return True
        return not message.startswith(_NOISE_PREFIXES)


def silence_known_warnings() -> None:
    """Ignore the warnings in :data:`_KNOWN_WARNINGS` (by message *and* emitting module), nothing else."""
    for message, category, module in _KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def setup_logging(level: int = logging.INFO) -> None:
    """Root handler printing ``%(message)s`` (gitnetic's stage output), with :class:`NoiseFilter` on it."""
    logging.basicConfig(level=level, format="%(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, NoiseFilter) for f in handler.filters):
            handler.addFilter(NoiseFilter())
    silence_known_warnings()


def adopt_library_loggers() -> None:
    """Route Lightning's log records through the root handler only (call after importing Lightning).

    Does nothing when the root logger has no handler (a library user who configured no logging keeps
    Lightning's own console output).
    """
    root = logging.getLogger()
    if not root.handlers:
        return
    for name in _LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        for handler in list(lib.handlers):
            if type(handler) is logging.StreamHandler:
                lib.removeHandler(handler)
        lib.propagate = True
    silence_known_warnings()
