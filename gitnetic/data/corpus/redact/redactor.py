"""Replace secrets and e-mail addresses with fixed placeholders before text reaches the corpus.

A code model memorises and can later print what it was trained on, so credentials must never reach the
shards. Like BigCode for StarCoder's data, findings are *replaced* (the file stays useful) by fixed
placeholders: ``<KEY>`` (tokens, access keys, generic secrets), ``<PASSWORD>`` (a URL's password, a
value assigned to a password-named variable), ``<PRIVATE_KEY>`` (a whole ``-----BEGIN ... PRIVATE
KEY-----`` block) and ``<EMAIL>``.

Detectors, in priority order (a span two detectors find counts once, for the first):

1. private-key blocks, header to footer (or to the end of the key body when the footer is missing);
2. gitleaks' provider rules (:mod:`gitnetic.data.corpus.redact.rules`: ~220 formats), plus four it lacks
   (Discord webhook URLs, Mailgun keys without the word "mailgun" nearby, and OpenAI and Anthropic
   keys by prefix, whatever their length);
3. the password of a ``scheme://user:password@host`` URL (any database or service URL), and
   credentials without a format or a secret name: ``.netrc`` passwords, base64 basic auth (Docker's
   ``"auth"``, ``Authorization: Basic``), ``<password>`` XML elements, command-line and ``...Auth(``
   call passwords (:mod:`gitnetic.data.corpus.redact.credentials`, ``redact/commands.py``);
4. generic secrets: a high-entropy value of a secret-named variable or key
   (:mod:`gitnetic.data.corpus.redact.generic`).

E-mail addresses are replaced afterwards, on the redacted text (so ``user:pw@host`` is not an address).

**Whole-secret redaction.** A rule's match locates a secret; what is replaced is the whole token around
it: the maximal run of token characters (letters, digits, ``_-+/.~``, trailing ``=``), widened to the
content of the enclosing quoted literal when that literal holds no blank. A token longer than the
documented format (or a rule that matches only its first part) therefore never leaves a suffix behind.

**Cost.** One Aho-Corasick pass over the lower-cased document finds every rule's keywords (as gitleaks
does) and the generic-secret names; a rule's regex runs only on documents containing one of its
keywords, and the generic check only at the names found. Within the windows around a keyword, a rule's
regex is tried only at the starts that can reach its literal anchor (the provider name most gitleaks
patterns hold): the same matches as scanning every position, at a fraction of the cost.
``bench/redact.py`` measures recall, false positives and time per MB against the previous
detect-secrets-based redactor; ``bench/clean_equivalence.py`` checks the findings stay identical.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import ahocorasick_rs

from gitnetic.data.corpus.redact.credentials import KEYWORDS as CREDENTIAL_KEYWORDS
from gitnetic.data.corpus.redact.credentials import find_credentials
from gitnetic.data.corpus.redact.generic import ENTROPY_THRESHOLD, find_generic_secrets, is_placeholder
from gitnetic.data.corpus.redact.generic import KEYWORDS as GENERIC_KEYWORDS
from gitnetic.data.corpus.redact.rules import (
    EXTRA_RULES,
    SecretRule,
    gitleaks_rules,
    global_allowlist,
    literal_anchor,
    shannon_entropy,
)

__all__ = ["PLACEHOLDERS", "Redactor"]

PLACEHOLDERS = {"key": "<KEY>", "password": "<PASSWORD>", "private_key": "<PRIVATE_KEY>", "email": "<EMAIL>"}

_PRIVATE_KEY = re.compile(
    r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,.-]*)",
    re.DOTALL,
)
# scheme://user:password@host; the password stops at '/', '@' and blanks (raw ones are not allowed there).
# Matched from each "://" (a regex starting with the scheme's character class would try every position).
_URL_USER_PASSWORD = re.compile(r"[^\s:/@'\"`{}<>]*:(?P<pw>[^\s/@'\"`{}<>]+)@")
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/.~")
_QUOTES = "\"'`"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_GENERIC = -1  # the rule index of a generic-secret name keyword
_CREDENTIALS = -2  # the rule index of a netrc / basic-auth keyword
# A rule's regex runs from this many characters before a keyword to this many after (the longest name
# prefix gitleaks' patterns allow is 50 + 20 characters; the longest bodies ~1000, e.g. PyPI tokens).
WINDOW_BEFORE, WINDOW_AFTER = 200, 1200

# local@domain.tld; the TLD is letters only, so decorators (@property), matrix products (a @ b) and
# version pins (pkg@1.2.3) are not addresses. Found from each '@' outwards (a regex that starts with a
# character class would try every position of every file: 10x slower on the stdlib).
_AT = re.compile(r"@(?=[A-Za-z0-9])")
_EMAIL_LOCAL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}\Z")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    priority: int  # lower wins when spans overlap
    kind: str  # the stats key
    placeholder: str


_LOCAL_LAST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for at in _AT.finditer(text):
        p = at.start()
        if p == 0 or text[p - 1] not in _LOCAL_LAST:
            continue  # a local part ends right before the "@": not a decorator, "a @ b", "(@"
        domain = _EMAIL_DOMAIN.match(text, p + 1)
        if domain is None:
            continue
        local = _EMAIL_LOCAL.search(text, max(0, p - 64), p)
        if local is not None:
            yield local.start(), domain.end()


def whole_token(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen ``[start, end)`` to the whole token around it (see the module doc)."""
    while end - start > 1 and text[start] in _QUOTES:  # a rule whose group takes the quotes too
        start += 1
    while end - start > 1 and text[end - 1] in _QUOTES:
        end -= 1
    while start > 0 and text[start - 1] in _TOKEN_CHARS:
        start -= 1
    while end < len(text) and (text[end] in _TOKEN_CHARS or text[end] == "="):
        end += 1
    line_start = text.rfind("\n", 0, start) + 1
    left = max(text.rfind(q, line_start, start) for q in _QUOTES)
    if left >= 0 and not any(c.isspace() for c in text[left + 1 : start]):
        right = text.find(text[left], end)
        newline = text.find("\n", end)
        if right >= 0 and (newline < 0 or right < newline) and not any(c.isspace() for c in text[end:right]):
            return left + 1, right
    return start, end


def anchored_matches(
    regex: re.Pattern[str], text: str, lowered: str, lo: int, hi: int, anchor: tuple
) -> Iterator[re.Match[str]]:
    """The matches of ``regex.finditer(text, lo, hi)``, found by trying ``regex.match`` only at the starts
    that can match: each match holds one of the anchor's spellings at most ``reach`` characters after its
    start (:func:`gitnetic.data.corpus.redact.rules.literal_anchor`), so with ``q`` the next spelling at or after
    the current position, no start before ``q - reach`` can match, and the starts up to ``q`` are tried
    in order (the first that matches is the one ``finditer`` returns: ``search`` tries the same starts
    in the same order). A window without one of the required pieces holds no match at all."""
    spellings, reach, required = anchor
    lo = max(lo, 0)  # as finditer reads a negative start (str.find would count it from the end)
    if not all(any(lowered.find(s, lo, hi) >= 0 for s in piece) for piece in required):
        return
    pos = lo
    while pos < hi:
        found = [i for i in (lowered.find(s, pos, hi) for s in spellings) if i >= 0]
        if not found:
            return
        q = min(found)
        for start in range(max(pos, q - reach), q + 1):
            m = regex.match(text, start, hi)
            if m is not None:
                yield m
                pos = m.end()  # > start: the match holds a spelling, so it is not empty
                break
        else:
            pos = q + 1


def _windows(hits: list[int], size: int) -> Iterator[tuple[int, int]]:
    """Merged ``[hit - WINDOW_BEFORE, hit + WINDOW_AFTER)`` ranges, clipped to the text."""
    lo = hi = -1
    for hit in sorted(hits):
        if hit - WINDOW_BEFORE > hi:
            if hi > lo:
                yield lo, hi
            lo = max(0, hit - WINDOW_BEFORE)
        hi = min(size, hit + WINDOW_AFTER)
    if hi > lo:
        yield lo, hi


class Redactor:
    """``redact(text) -> (text, counts)``: the text with every detected secret replaced, and per-kind counts."""

    def __init__(
        self, secrets: bool = True, emails: bool = True, generic_entropy: float = ENTROPY_THRESHOLD
    ) -> None:
        self.secrets, self.emails, self.generic_entropy = secrets, emails, generic_entropy
        self.rules: tuple[SecretRule, ...] = (*gitleaks_rules(), *EXTRA_RULES) if secrets else ()
        self._allow_regexes, self._stopwords = global_allowlist()
        self._automaton = None
        if secrets:
            by_keyword: dict[str, list[int]] = {}
            for index, rule in enumerate(self.rules):
                for keyword in rule.keywords:
                    by_keyword.setdefault(keyword, []).append(index)
            for keyword in GENERIC_KEYWORDS:
                by_keyword.setdefault(keyword, []).append(_GENERIC)
            for keyword in CREDENTIAL_KEYWORDS:
                by_keyword.setdefault(keyword, []).append(_CREDENTIALS)
            self._keywords = list(by_keyword)
            self._keyword_rules = [tuple(by_keyword[k]) for k in self._keywords]
            # over the UTF-8 bytes: the str automaton converts every match's offset back to characters,
            # which cost as much as the search on non-ASCII files (bench/clean_equivalence.py)
            self._automaton = ahocorasick_rs.BytesAhoCorasick(
                [k.encode("utf-8") for k in self._keywords], implementation=ahocorasick_rs.Implementation.DFA
            )
        self._anchors = [literal_anchor(rule.regex) for rule in self.rules]

    def _keyword_pass(self, text: str) -> tuple[dict[int, list[int]], list[int], list[int], str]:
        """Where each rule's keywords occur in ``text`` (rule index -> positions), where the
        generic-secret keywords and the credential keywords do, and the lower-cased text. Case-insensitive: the text is lower-cased
        (positions must stay those of ``text``)."""
        lowered = text.lower()
        if len(lowered) != len(text):  # a few non-ASCII letters lower-case to two characters
            lowered = text.translate(_ASCII_LOWER)
        data = lowered.encode("utf-8")  # a lone surrogate raises here as it did in the str automaton
        matches = self._automaton.find_matches_as_indexes(data, overlapping=True)
        starts = [m[1] for m in matches]
        if len(data) != len(lowered) and matches:  # byte offsets -> character offsets
            to_char, chars, last = {}, 0, 0
            for offset in sorted(set(starts)):  # each a match's first byte: a character boundary
                chars += len(data[last:offset].decode("utf-8"))
                to_char[offset], last = chars, offset
            starts = [to_char[offset] for offset in starts]
        by_rule: dict[int, list[int]] = {}
        generic: list[int] = []
        credentials: list[int] = []
        for (keyword, _, _), start in zip(matches, starts, strict=True):
            for index in self._keyword_rules[keyword]:
                if index == _GENERIC:
                    generic.append(start)
                elif index == _CREDENTIALS:
                    credentials.append(start)
                else:
                    by_rule.setdefault(index, []).append(start)
        return by_rule, generic, credentials, lowered

    def _allowed(self, secret: str) -> bool:
        low = secret.lower()
        return any(r.search(secret) for r in self._allow_regexes) or any(s in low for s in self._stopwords)

    def _rule_spans(self, index: int, text: str, lowered: str, hits: list[int]) -> Iterator[tuple[int, int]]:
        """The secrets rule ``index`` finds near its keyword ``hits``: the regex runs only in windows
        around them (a rule's match contains its keyword; a token cut by a window's edge is widened again
        by :func:`whole_token`), not over the whole document, and within a window only near its anchor
        (:func:`anchored_matches`) when it has one."""
        rule, anchor = self.rules[index], self._anchors[index]
        for lo, hi in _windows(hits, len(text)):
            if anchor is None:
                matches = rule.regex.finditer(text, lo, hi)
            else:
                matches = anchored_matches(rule.regex, text, lowered, lo, hi, anchor)
            for m in matches:
                group = rule.secret_group
                if group == 0 and rule.regex.groups:
                    group = next((g for g in range(1, rule.regex.groups + 1) if m.group(g)), 0)
                start, end = m.span(group)
                if end <= start:
                    continue
                secret = text[start:end]
                if rule.entropy and shannon_entropy(secret) <= rule.entropy:
                    continue
                if self._allowed(secret):
                    continue
                yield whole_token(text, start, end)

    def _secret_spans(self, text: str) -> list[_Span]:
        spans: list[_Span] = []
        if "PRIVATE KEY" in text:
            for m in _PRIVATE_KEY.finditer(text):
                spans.append(_Span(m.start(), m.end(), 0, "private_key", PLACEHOLDERS["private_key"]))
        by_rule, generic, credentials, lowered = self._keyword_pass(text)
        for index, hits in sorted(by_rule.items()):
            rule = self.rules[index]
            for start, end in self._rule_spans(index, text, lowered, hits):
                spans.append(_Span(start, end, 1, rule.kind, PLACEHOLDERS["key"]))
        at = text.find("://")
        while at >= 0:
            m = _URL_USER_PASSWORD.match(text, at + 3)
            if m and not is_placeholder(m.group("pw")) and m.group("pw").lower() not in ("password", "pass"):
                spans.append(_Span(*m.span("pw"), 2, "url_password", PLACEHOLDERS["password"]))
            at = text.find("://", at + 3)
        for start, end, kind in find_credentials(text, credentials):
            placeholder = PLACEHOLDERS["password" if kind.endswith("password") else "key"]
            spans.append(_Span(start, end, 2, kind, placeholder))
        for start, end, kind in find_generic_secrets(text, generic, self.generic_entropy):
            placeholder = PLACEHOLDERS["password" if kind == "password" else "key"]
            spans.append(_Span(start, end, 3, f"generic_{kind}", placeholder))
        return spans

    @staticmethod
    def _replace(text: str, spans: list[_Span], counts: dict[str, int]) -> str:
        """Replace the union of ``spans``; overlapping spans become one, counted for the best priority."""
        if not spans:
            return text
        spans.sort(key=lambda s: (s.start, s.priority))
        pieces: list[str] = []
        last = 0
        best, start, end = spans[0], spans[0].start, spans[0].end
        for span in [*spans[1:], None]:
            if span is not None and span.start < end:
                end = max(end, span.end)
                best = span if span.priority < best.priority else best
                continue
            pieces += (text[last:start], best.placeholder)
            counts[best.kind] = counts.get(best.kind, 0) + 1
            last = end
            if span is not None:
                best, start, end = span, span.start, span.end
        pieces.append(text[last:])
        return "".join(pieces)

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}
        if self.secrets:
            text = self._replace(text, self._secret_spans(text), counts)
        if self.emails and "@" in text:
            spans = [_Span(s, e, 0, "email", PLACEHOLDERS["email"]) for s, e in _emails(text)]
            text = self._replace(text, spans, counts)
        return text, counts
