"""Near-duplicate removal: shingle hashes computed in NumPy (``shingle_hash``), MinHash signatures, banded
LSH and exact verification (``index``)."""
