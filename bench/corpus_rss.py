"""Peak memory of the corpus stage versus the size of the corpus it writes.

The corpus stage streams: it should hold only file paths and 16-byte content digests, so its peak RSS
must stay far below the bytes it writes. Run: ``python bench/corpus_rss.py [--max_bytes 0]``; it prints
one JSON line (numbers vary by machine; nothing here is asserted).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_bytes", type=int, default=0, help="corpus cap (0 = the whole stdlib)")
    args = parser.parse_args()

    import tqdm.auto  # noqa: F401 - imported lazily by the stage; count it as start-up, not as corpus memory

    from gitnetic.data.corpus.params import CorpusParams
    from gitnetic.data.corpus.stage import collect_corpus

    before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as out:
        stats = collect_corpus(CorpusParams(out_dir=out, max_bytes=args.max_bytes, max_file_bytes=0))
    after = peak_rss_mb()
    print(
        json.dumps(
            {
                "documents": stats.total_documents,
                "corpus_mb": round(stats.total_bytes / 2**20, 1),
                "peak_rss_before_mb": round(before, 1),
                "peak_rss_after_mb": round(after, 1),
                "peak_rss_growth_mb": round(after - before, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
