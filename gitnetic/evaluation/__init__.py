"""Scoring a trained model on held-out shards: perplexity next to a unigram baseline, and code completion."""
