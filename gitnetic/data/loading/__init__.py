"""Train-time loading of shards: batch plans by ``max_tokens`` or packing (``batching``), weighted blends
of prefixes (``blend``) and fill-in-the-middle rewriting of samples (``fim``). Used by the datamodule and
evaluate; no stage of its own."""
