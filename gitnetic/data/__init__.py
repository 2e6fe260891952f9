"""Data stages: corpus collection, tokenizer training, MMIDIDX shards and batching."""
