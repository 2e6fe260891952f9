"""The data steps, one package each in pipeline order: ``corpus`` (sources -> cleaned, deduplicated
JSONL splits), ``tokenizer`` (train and load), ``shards`` (MMIDIDX format and the binarize stage) and
``loading`` (train-time batching, blends, FIM). The modules beside them are shared by more than one step:
``jsonl`` (the corpus files), ``source_routing`` (source names -> shard prefixes), ``problems``
(HumanEval-schema problems: decontamination and benchmark) and ``hf_folder`` (checks of a local HF model
folder). No data step imports torch."""
