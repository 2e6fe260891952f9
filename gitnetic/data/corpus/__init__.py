"""The corpus step: source trees, repositories and the standard library -> ``{train,valid,test}.jsonl``.

One folder a kind of step, as the stage runs them: ``params`` at the bottom (the typed groups every
module reads), ``sources/`` (what documents exist, in a stable order), ``filters``, ``redact/`` and
``decontaminate`` (per document, in worker processes: ``clean``), ``neardup/`` and exact dedup, caps and
``splits`` (in corpus order: ``decide``), ``licenses`` and ``stats``; ``loop`` is the one loop every
job of the stage runs, ``stage`` its entry, ``split_files`` the one-process stage's outputs and ``parts``
the fan-out's own pieces (a sign job's part files, the decide job's replay, the write job).
"""
