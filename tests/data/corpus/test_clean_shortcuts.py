"""The cleaning steps' shortcuts give exactly what the plain code they replace gives.

Word splitting and the alphanumeric count avoid the regex engine, a redaction rule's regex runs only near
its literal anchor, and decontamination searches the UTF-8 bytes; each is checked here against the
plain version (``re.findall``, ``finditer`` over the whole window, the str matcher) on the inputs where
they could differ: every code point, planted secrets at every position, non-ASCII text and blanks.
bench/clean_equivalence.py does the same on a whole real corpus.
"""

from __future__ import annotations

import re
import sys

import ahocorasick_rs
import numpy as np
import pytest
import rensa

from gitnetic.data.corpus.decontaminate import Decontaminator, normalise, problem_needles
from gitnetic.data.corpus.filters import alnum_count
from gitnetic.data.corpus.neardup.index import MinHasher, shingles, split_words
from gitnetic.data.corpus.redact.redactor import Redactor, _windows, anchored_matches
from gitnetic.data.corpus.redact.rules import literal_anchor
from gitnetic.data.problems import read_problems
from tests.secret_samples import planted

EVERY_CHAR = "".join(map(chr, range(sys.maxunicode + 1)))
SAMPLES = [
    "def café(naïve, x_1):\n    return naïve — x_1 → 2 ² ½ ٣\u00a0Ⅻ\u3000日本語 ok",
    "a\x1cb\x85c\u2028d_e  f\tg\r\nh",
    "",
    "   ",
    "only ascii words_here 123 a.b(c)",
]


@pytest.mark.parametrize("text", [*SAMPLES, EVERY_CHAR, "x" + "".join(map(chr, range(0xD800, 0xD810)))])
def test_split_words_and_alnum_count_equal_the_regexes(text: str) -> None:
    assert split_words(text) == re.findall(r"\w+", text)
    assert alnum_count(text) == sum(map(len, re.findall(r"[^\W_]+", text)))


def test_shingles_of_non_ascii_text_are_the_regex_words() -> None:
    text = SAMPLES[0] * 3
    words = re.findall(r"\w+", text)
    assert shingles(text, 5) == {" ".join(words[i : i + 5]) for i in range(len(words) - 4)}
    assert shingles("one two", 5) == {"one two"}


@pytest.mark.parametrize("library", ["rensa", "datasketch"])
def test_sign_is_the_minhash_of_the_shingle_hash_set(library: str) -> None:
    """sign_many() hashes each document's shingle list (repeats included) for a whole batch; each
    signature is the MinHash of that document's own set of shingle hashes, whatever its batch."""
    hasher = MinHasher(library=library)
    long = " ".join(f"w{i}" for i in range(70_000))
    texts = [SAMPLES[0] * 4, "x = 1\n" * 50 + "y = 2", "short", long, ""]
    batch = hasher.sign_many([t.encode("utf-8") for t in texts])
    for text, signed in zip(texts, batch, strict=True):
        distinct = hasher.shingler.hash_set(text.encode("utf-8"))
        if library == "rensa":
            matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
                distinct, np.array([0, distinct.size], dtype=np.uint64), hasher.num_perm, hasher.seed
            )
            expected = np.array(matrix.to_rows()[0], dtype=np.uint32)
        else:
            mh = hasher._ds.MinHash(
                num_perm=hasher.num_perm,
                permutations=hasher._permutations,
                scheme=hasher._scheme,
                hashfunc=int,
            )
            mh.update_batch((distinct & np.uint64(0xFFFFFFFF)).tolist())
            expected = mh.hashvalues.astype(np.uint32)
        assert np.array_equal(signed.values, expected)
        assert np.array_equal(hasher.sign(text).values, expected)
    assert len({bytes(s.values) for s in batch}) == len(texts)


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def test_most_rules_have_an_anchor(redactor: Redactor) -> None:
    anchored = [a for a in redactor._anchors if a is not None]
    assert len(anchored) >= 0.9 * len(redactor.rules)
    assert literal_anchor(re.compile(r"\w+")) is None  # no literal: the plain finditer
    assert literal_anchor(re.compile("abc")) is None  # not re.ASCII: case folding could move letters


def test_anchored_matches_equal_finditer_on_planted_secrets(redactor: Redactor) -> None:
    """Every rule with an anchor, in every window the redactor would search, on planted secrets of every
    format (one document, so windows start at 0, inside the text, and merge)."""
    text = "\n".join(doc.text for doc in planted(seed=5, per_pair=1))
    text = text + "\n" + text.upper()  # case-insensitive rules see upper-case keywords too
    by_rule, _, _, lowered = redactor._keyword_pass(text)
    compared = found = 0
    for index, hits in by_rule.items():
        anchor, regex = redactor._anchors[index], redactor.rules[index].regex
        if anchor is None:
            continue
        for lo, hi in [*_windows(hits, len(text)), (-5, len(text))]:
            expected = [m.span() for m in regex.finditer(text, lo, hi)]
            assert [m.span() for m in anchored_matches(regex, text, lowered, lo, hi, anchor)] == expected
            compared += 1
            found += len(expected)
    assert compared > 100 and found > 100


def test_bytes_and_str_decontamination_paths_agree() -> None:
    problem = read_problems("humaneval")[0]
    body = problem.prompt + problem.canonical_solution
    decontaminator = Decontaminator(["humaneval"])
    in_str = ahocorasick_rs.AhoCorasick(problem_needles(read_problems("humaneval"), decontaminator.min_chars))
    texts = (f"import os\n{body}", f"# café\n{body}", f"x = 1\x1c{body}", f"x\u00a0{body}", "é")
    for text in texts:
        expected = in_str.find_matches_as_indexes(normalise(text), overlapping=False)
        found = decontaminator.contaminated(text)
        assert found == ("humaneval" if expected else None), text[:30]
    for blank in ("\x1c", "\u00a0", "\u3000"):
        assert decontaminator.contaminated(body.replace(" ", blank)) == "humaneval"
    # the first hit, which names the benchmark, is the same needle in both matchers
    problems = read_problems("humaneval")[:30]
    text = normalise("é → ".join(p.prompt + p.canonical_solution for p in reversed(problems)))
    str_hits = in_str.find_matches_as_indexes(text, overlapping=False)
    bytes_hits = decontaminator.matcher.find_matches_as_indexes(text.encode("utf-8"), overlapping=False)
    assert len(str_hits) > 20 and [h[0] for h in str_hits] == [h[0] for h in bytes_hits]
    assert decontaminator.dropped["humaneval"] == 4 + 3


@pytest.mark.parametrize("prefix", ["# café 日本語 —\n", "# İstanbul Kelvin \u212a\n"])
def test_redaction_after_non_ascii_text_equals_after_ascii_text(redactor: Redactor, prefix: str) -> None:
    """Keyword positions found in UTF-8 bytes map back to characters (the second prefix also makes
    ``str.lower()`` change the length, so the ASCII-only lowering runs)."""
    ascii_prefix = "#" * len(prefix) + "\n"
    for doc in list(planted(seed=7, per_pair=1))[::7]:
        plain, plain_counts = redactor.redact(ascii_prefix + doc.text)
        out, counts = redactor.redact(prefix + doc.text)
        assert counts == plain_counts and out[len(prefix) :] == plain[len(ascii_prefix) :], doc.format
