"""The credential formats the corpus stage redacts: gitleaks' maintained rule set, read as data.

Why gitleaks: its default configuration is the reference rule set of the field (222 rules, ~170
providers: cloud, VCS, payment, chat, AI providers, registries, JWTs, private keys, ...), generated
and tested upstream and updated with every release; detect-secrets (what gitnetic used before) ships
14 usable prefix patterns, and no PyPI package ships a maintained set that covers the formats people
leak (the evaluation is in docs/corpus.md). The file ``gitleaks/gitleaks.toml`` next to this module is
gitleaks v8.30.1's ``config/gitleaks.toml``, unmodified, under gitleaks' MIT license
(``gitleaks/LICENSE``). To update it, replace that file with a newer release's and run the tests.

gitleaks is written in Go, so its patterns are RE2 syntax; :func:`go_to_python` rewrites the three
constructs Python's ``re`` spells differently, and every rule is compiled with ``re.ASCII`` (Go's
``\\w``, ``\\s``, ``\\b`` are ASCII-only). Each rule keeps gitleaks' keywords, which the redactor
finds with one Aho-Corasick pass per document (as gitleaks does): a rule's regex only runs on a
document that contains one of its keywords.

Three deliberate departures:

* the trailing terminator most rules end with (a quote, blank, ``;`` or end of line must follow the
  secret) is dropped, so a token longer than the documented format is still found; the redactor then
  replaces the whole token around the match, never only the matched part;
* two keywords too common in code are narrowed (see ``_KEYWORD_OVERRIDES``);
* per-rule allowlists are ignored (e.g. AWS' ``...EXAMPLE`` keys): for training data, redacting a
  documented example key costs nothing. The global allowlist (``${VAR}``, ``{{ template }}``, ``true``,
  paths, ...) and stopwords still apply to every finding.

gitleaks' ``generic-api-key`` and ``hashicorp-tf-password`` rules are left out:
:mod:`gitnetic.data.corpus.redact.generic` does that job (a name that says secret, placeholders excluded, plus
an entropy threshold measured by ``bench/redact.py``).
"""

from __future__ import annotations

import math
import re
import re._constants as sre_constants
import re._parser as sre_parse
import tomllib
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "EXTRA_RULES",
    "GITLEAKS_TOML",
    "SecretRule",
    "gitleaks_rules",
    "global_allowlist",
    "go_to_python",
    "literal_anchor",
    "shannon_entropy",
]

GITLEAKS_TOML = Path(__file__).parent / "gitleaks" / "gitleaks.toml"
# Rules replaced by gitnetic's own generic detector (see the module doc): gitleaks' catch-all for
# secret-named values, and its Terraform password rule, which takes any 8-20 character quoted value of a
# name containing "password" ("changeme" included: no placeholder check, entropy above 2 only).
SKIPPED_RULES = frozenset({"generic-api-key", "hashicorp-tf-password"})
# Keywords so common in code that they made the keyword pass and the regex windows cost more than the
# whole previous redactor (bench/redact.py): "s." (Vault's pre-1.10 token format "s.<24 chars>", left to
# the generic detector, which finds it under a name such as VAULT_TOKEN) and JWT's "ey", replaced by
# ".ey", which every match of that rule contains too (its second part starts with "ey").
_KEYWORD_OVERRIDES = {"vault-service-token": ("hvs.",), "jwt": (".ey",)}
# The terminator gitleaks appends to most patterns (see the module doc); removed when it ends one.
_TERMINATOR = r"""(?:[\x60'"\s;]|\\[nr]|$)"""
_POSIX_CLASSES = {
    "[:alnum:]": "A-Za-z0-9",
    "[:alpha:]": "A-Za-z",
    "[:digit:]": "0-9",
    "[:xdigit:]": "0-9A-Fa-f",
}


@dataclass(frozen=True)
class SecretRule:
    """One gitleaks rule, ready for Python: what the redactor needs of it."""

    id: str  # gitleaks' rule id, e.g. "github-pat"
    regex: re.Pattern[str]
    keywords: tuple[str, ...]  # lower-case; the rule runs only on text containing one
    entropy: float  # minimal Shannon entropy of the secret (0 = no check)
    secret_group: int  # the group holding the secret; 0 = first non-empty group, or the match

    @property
    def kind(self) -> str:
        """The ``stats.json`` key: the rule id with underscores."""
        return self.id.replace("-", "_")


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s own character distribution (gitleaks' and detect-secrets' measure)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _rest_of_group(pattern: str, start: int) -> tuple[int, list[int]]:
    """From ``start``: the index of the ``)`` closing the enclosing group (``len(pattern)`` at top level)
    and the indices of that group's own ``|`` separators on the way."""
    depth, i, in_class, bars = 0, start, False, []
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                i += 1  # a ']' right after '[' or '[^' is a literal
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return i, bars
            depth -= 1
        elif ch == "|" and depth == 0:
            bars.append(i)
        i += 1
    return len(pattern), bars


def go_to_python(pattern: str) -> str:
    """Rewrite an RE2 (Go) pattern for Python's ``re``.

    * ``\\z`` (end of text) is ``\\Z`` in Python;
    * POSIX classes such as ``[[:alnum:]]`` become explicit ranges;
    * a flag group in mid-pattern (``ab(?i)cd|ef``) applies, in Go, to the rest of its enclosing group,
      later alternatives included; Python only allows flags at the very start, so each affected
      alternative becomes a scoped group: ``ab(?i:cd)|(?i:ef)``.
    """
    pattern = pattern.replace(r"\z", r"\Z")
    for posix, ranges in _POSIX_CLASSES.items():
        pattern = pattern.replace(posix, ranges)
    while True:
        found = [
            m
            for m in re.finditer(r"\(\?([a-z]+)\)", pattern)
            if m.start() > 0 and pattern[m.start() - 1] != "\\"
        ]
        if not found:
            return pattern
        m = found[0]
        end, bars = _rest_of_group(pattern, m.end())
        cuts = [m.end(), *[b + 1 for b in bars], end + 1]
        parts = [pattern[a : b - 1] for a, b in zip(cuts, cuts[1:], strict=False)]
        scoped = "|".join(f"(?{m.group(1)}:{part})" for part in parts)
        pattern = pattern[: m.start()] + scoped + pattern[end:]


def _strip_terminator(pattern: str) -> str:
    if pattern.endswith(_TERMINATOR):
        return pattern[: -len(_TERMINATOR)]
    if pattern.endswith(r"\b") and not pattern.endswith(r"\\b"):
        return pattern[:-2]
    return pattern


# Formats gitleaks has no rule for, or pins too tightly: (id, pattern, keywords, minimal entropy).
_EXTRA = (
    ("discord-webhook-url", r"https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[\w-]{40,}",
     ("discord",), 0.0),
    # OpenAI and Anthropic keys by prefix alone: gitleaks' rules also pin the lengths and OpenAI's
    # "T3BlbkFJ" marker, so a key of a newer layout would be missed.
    ("openai-prefixed-key", r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{32,}",
     ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-none-"), 3.0),
    ("anthropic-prefixed-key", r"\bsk-ant-[a-z]{3,8}\d{2}-[A-Za-z0-9_-]{32,}", ("sk-ant-",), 3.0),
    # Mailgun's private API key: gitleaks finds it only next to the word "mailgun".
    ("mailgun-key", r"\bkey-[0-9a-f]{32}\b", ("key-",), 3.0),
)  # fmt: skip
EXTRA_RULES = tuple(SecretRule(i, re.compile(p, re.ASCII), k, e, 0) for i, p, k, e in _EXTRA)


# literal_anchor: at most this many spellings per literal piece, and how far after a match's start its
# piece may begin for the anchor to be worth using (the redactor tries every start up to that far back).
_MAX_SPELLINGS, _MAX_REACH = 64, 400


def _spellings(item: tuple) -> tuple[str, ...] | None:
    """The lower-cased strings one parsed regex item always matches one of, or None if it is not that
    simple (a class of single characters counts; zero-width assertions match the empty string)."""
    op, av = item
    # ASCII only: the redactor's lower-cased text lowers only ASCII letters in some files
    if op is sre_constants.LITERAL and av < 128:
        return (chr(av).lower(),)
    if op is sre_constants.AT:
        return ("",)
    if op is sre_constants.IN and all(o is sre_constants.LITERAL and c < 128 for o, c in av):
        return tuple(sorted({chr(c).lower() for _, c in av}))
    if op is sre_constants.SUBPATTERN:
        return _sequence_spellings(av[3].data)
    if op is sre_constants.BRANCH:
        found: set[str] = set()
        for alternative in av[1]:
            spelled = _sequence_spellings(alternative.data)
            if spelled is None:
                return None
            found.update(spelled)
        return tuple(sorted(found)) if len(found) <= _MAX_SPELLINGS else None
    return None


def _sequence_spellings(items: list) -> tuple[str, ...] | None:
    result: tuple[str, ...] = ("",)
    for item in items:
        spelled = _spellings(item)
        if spelled is None or len(result) * len(spelled) > _MAX_SPELLINGS:
            return None
        result = tuple(sorted({a + b for a in result for b in spelled}))
    return result


def _flat_items(items: list) -> list:
    """The top-level sequence with groups spliced in (a group does not change what text it matches)."""
    out = []
    for item in items:
        if item[0] is sre_constants.SUBPATTERN:
            out += _flat_items(item[1][3].data)
        else:
            out.append(item)
    return out


def literal_anchor(regex: re.Pattern[str]) -> tuple[tuple[str, ...], int, tuple[tuple[str, ...], ...]] | None:
    """``(spellings, reach, required)`` of ``regex``, or None when the analysis finds none.

    Every match of ``regex`` contains, at most ``reach`` characters after the match's start, one of
    ``spellings`` (lower-cased: look for them in lower-cased text), and contains one spelling of each
    piece in ``required`` somewhere. The redactor uses this to try the regex only at the few starts
    near a spelling instead of at every position of a window (gitleaks' ``[\\w.-]{0,50}?(?:name)...``
    patterns cost ~50 steps per position), which finds the same matches (see ``anchored_matches`` in
    :mod:`gitnetic.data.corpus.redact.redactor`). Only ``re.ASCII`` patterns qualify: their case-insensitive letters
    are ASCII, which lower-cased text keeps in place.
    """
    if not regex.flags & re.ASCII:
        return None
    try:
        parsed = sre_parse.parse(regex.pattern, regex.flags)
    except (re.error, RecursionError):
        return None
    pieces: list[tuple[tuple[str, ...], int]] = []  # (spellings, the most characters before the piece)
    before, current, current_before = 0, None, 0
    for item in [*_flat_items(parsed.data), None]:
        spelled = None if item is None else _spellings(item)
        if spelled is not None and current is not None and len(current) * len(spelled) <= _MAX_SPELLINGS:
            current = tuple(sorted({a + b for a in current for b in spelled}))
        else:
            if current is not None and min(map(len, current)) > 0:
                pieces.append((current, current_before))
            current, current_before = spelled, before
        if item is not None:
            width = sre_parse.SubPattern(parsed.state, [item]).getwidth()[1]
            before = before + width if width < sre_constants.MAXREPEAT else sre_constants.MAXREPEAT
    usable = [p for p in pieces if p[1] <= _MAX_REACH]
    if not usable:
        return None
    spellings, reach = max(usable, key=lambda p: (min(map(len, p[0])), -p[1]))
    return spellings, reach, tuple(p[0] for p in pieces)


@cache
def gitleaks_rules() -> tuple[SecretRule, ...]:
    """The vendored gitleaks rules (compiled once per process), minus :data:`SKIPPED_RULES`."""
    with GITLEAKS_TOML.open("rb") as fh:
        config = tomllib.load(fh)
    rules = []
    for raw in config["rules"]:
        if raw["id"] in SKIPPED_RULES or "regex" not in raw:
            continue  # path-only rules (e.g. pkcs12-file) name files, not text
        pattern = _strip_terminator(go_to_python(raw["regex"]))
        rules.append(
            SecretRule(
                id=raw["id"],
                regex=re.compile(pattern, re.ASCII),
                keywords=_KEYWORD_OVERRIDES.get(raw["id"], tuple(k.lower() for k in raw.get("keywords", ()))),
                entropy=float(raw.get("entropy", 0.0)),
                secret_group=int(raw.get("secretGroup", 0)),
            )
        )
    return tuple(rules)


@cache
def global_allowlist() -> tuple[tuple[re.Pattern[str], ...], tuple[str, ...]]:
    """gitleaks' global allowlist: regexes a secret must not match, and stopwords it must not contain."""
    with GITLEAKS_TOML.open("rb") as fh:
        allow = tomllib.load(fh).get("allowlist", {})
    regexes = tuple(re.compile(go_to_python(p), re.ASCII) for p in allow.get("regexes", ()))
    return regexes, tuple(s.lower() for s in allow.get("stopwords", ()))
