"""Credentials without a provider format or a secret-named variable: ``.netrc`` entries and basic auth.

Data from many repositories carries two kinds that neither gitleaks' rules nor the generic check see:

* ``.netrc`` / ``_netrc`` entries (``machine HOST login USER password SECRET``, on one line or many, in
  any order, ``default`` entries, ``account`` tokens, ``#`` comments between tokens): the password is a
  bare whitespace-separated token, often short and low-entropy, with no ``=`` or ``:`` after its name.
  A ``password`` or ``account`` token counts when a neighbouring token pair is netrc grammar too
  (``machine X``, ``login X``, ``default``, another ``password``/``account`` pair), so prose with the
  word "password" in it stays. Its value is replaced whatever its entropy.
* base64 of ``user:password`` (HTTP basic auth): Docker's ``config.json`` ``"auth": "..."``, npm's
  ``_auth=...``, ``Authorization: Basic ...`` / ``Proxy-Authorization`` headers, git's ``extraheader``.
  A base64 token after the word ``basic`` or as the value of an ``auth``-named key is replaced when it
  decodes to printable text holding a ``:``; Docker's ``identitytoken`` and ``registrytoken`` values
  are replaced whatever they hold.

Both run only at the positions of :data:`KEYWORDS` found by the redactor's single keyword pass.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from gitnetic.data.corpus.redact.commands import KEYWORDS as COMMAND_KEYWORDS
from gitnetic.data.corpus.redact.commands import PROSE as _PROSE
from gitnetic.data.corpus.redact.commands import find_command_credentials
from gitnetic.data.corpus.redact.generic import is_placeholder

__all__ = ["KEYWORDS", "find_credentials"]

_OWN_KEYWORDS = (
    "password",
    "account",
    "basic",
    "auth",
    "identitytoken",
    "registrytoken",
    "dockerconfigjson",
    "dockercfg",
)

KEYWORDS = _OWN_KEYWORDS + COMMAND_KEYWORDS

_NETRC_VALUE_KEYS = frozenset({"machine", "login", "password", "account", "port"})
_NETRC_SECRET_KEYS = frozenset({"password", "account"})
_NETRC_KEYS = _NETRC_VALUE_KEYS | {"default", "macdef"}
_OPERATOR = re.compile(r"[=:+*/<>!|&%^-]+\Z")
# a netrc token: a run of non-blanks; a value may be a double-quoted string (Python's netrc reads those)
_TOKEN = re.compile(r"\S+")
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"(?=\s|\Z)')
_COMMENT = re.compile(r"#[^\n]*")
# how far around a password token the netrc grammar is looked for
_NETRC_REACH = 400
# a value's tail that closes the literal the entry sits in ('...password p\n"', "password p',")
_LITERAL_TAIL = re.compile(r"""(?:\\[nrt])*["'`]?[,;)\]}]*\Z""")

_B64 = r"[A-Za-z0-9+/_-]{8,}={0,2}"
# "Basic B64", and "Basic " + "B64" / b"Basic " + b"B64" (the scheme and the value in two literals)
_BASIC = re.compile(
    r"""basic(?=[ \t"'`])[ \t]*(?:["'`][ \t]*[+.,]?[ \t]*[bBfFrRuU]{0,2}["'`])?[ \t]*(?P<v>"""
    + _B64
    + r")(?![A-Za-z0-9+/=_-])",
    re.IGNORECASE,
)
# <password>VALUE</password>, <db.password>, <proxyPassword> (Maven settings.xml, Java/.NET configs)
_XML_PASSWORD = re.compile(r"[\w.:-]*>(?P<v>[^<\n]{1,300})</")
# Kubernetes image-pull secrets: base64 of a whole Docker config.json
_DOCKERCONFIG = re.compile(r"""[\w.-]*["']?[ \t]*[:=][ \t]*["']?(?P<v>[A-Za-z0-9+/]{20,}={0,2})""")
# an auth-named key (auth, _auth, "auth", basicAuth, auth_basic...) then = or : and a quoted or bare value
_AUTH_VALUE = re.compile(
    r"""[\w.-]*["']?[ \t]*(?::|=)[ \t]*["']?(?P<v>""" + _B64 + r""")(?![A-Za-z0-9+/=_-])"""
)
_TOKEN_VALUE = re.compile(r"""["']?[ \t]*:[ \t]*"(?P<v>[^"\s]{8,})\"""")
_PRINTABLE = re.compile(r"[\x20-\x7e]+\Z")


def _user_password(value: str) -> bool:
    """True when ``value`` is base64 (standard or URL-safe, padding optional) of ``user:password``."""
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        decoded = raw.decode("ascii")
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(":")
    return bool(sep and user and len(password) >= 2 and _PRINTABLE.match(decoded))


def _tokens(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The netrc tokens of ``text[lo:hi]`` as spans, ``#`` comments left out."""
    spans: list[tuple[int, int]] = []
    pos = lo
    while pos < hi:
        m = _TOKEN.search(text, pos, hi)
        if m is None:
            break
        after_secret_key = bool(spans) and _netrc_word(text[slice(*spans[-1])]) in _NETRC_SECRET_KEYS
        if m.group().startswith("#") and not after_secret_key:  # "password #x1..." is a value
            pos = _COMMENT.match(text, m.start()).end()
            continue
        spans.append(m.span())
        pos = m.end()
    return spans


def _netrc_word(token: str) -> str:
    """The token lower-cased without a literal's opening quote (``"machine`` in a string)."""
    return token.lstrip("\"'`").lower()


def _netrc_value(token: str) -> bool:
    """A token that can be a netrc value: not another keyword, an operator (``password = x``) or a code
    argument list (``password, readermode,``)."""
    word = _netrc_word(token)
    if not word or word in _NETRC_KEYS or word.rstrip(".") in _PROSE or _OPERATOR.match(token):
        return False
    return not token.endswith((",", "("))


def _netrc_secret(text: str, hit: int) -> tuple[int, int] | None:
    """The span of the value after the ``password``/``account`` token at ``hit``, if it is netrc."""
    keyword_end = hit + (8 if text[hit : hit + 8].lower() == "password" else 7)
    if keyword_end >= len(text) or text[keyword_end] not in " \t\r\n":
        return None  # cheap check first: netrc keywords stand alone ("password=", "password_file")
    lo, hi = max(0, hit - _NETRC_REACH), min(len(text), hit + _NETRC_REACH)
    tokens = _tokens(text, lo, hi)
    index = next((i for i, (s, e) in enumerate(tokens) if s <= hit < e), None)
    if index is None or index + 1 >= len(tokens):
        return None
    raw = [text[s:e] for s, e in tokens]
    words = [_netrc_word(t) for t in raw]
    if words[index] not in _NETRC_SECRET_KEYS or not _netrc_value(raw[index + 1]):
        return None  # "password" inside a longer word or name, or code ("password = ...")

    def pairs(i: int, step: int) -> bool:
        """Walking from token ``i`` by ``step`` over netrc pairs, is there a machine/login/default?"""
        for _ in range(6):
            if 0 <= i < len(words) and words[i] == "default":
                # an entry's start: followed by its first keyword, or the last token ("default UPDATE
                # values" is prose)
                return step < 0 or i + 1 == len(words) or words[i + 1] in _NETRC_KEYS
            kw = i if step > 0 else i - 1  # the keyword of the pair that ends (backwards) or starts at i
            if not (0 <= kw and kw + 1 < len(words)) or words[kw] not in _NETRC_VALUE_KEYS:
                return False
            if not _netrc_value(raw[kw + 1]):
                return False
            if words[kw] in ("machine", "login"):
                return True
            i += 2 * step
        return False

    if not (pairs(index - 1, -1) or pairs(index + 2, 1)):
        return None
    start, end = tokens[index + 1]
    value = raw[index + 1]
    quoted = _QUOTED.match(text, start) if value.startswith('"') else None
    if quoted is not None:
        start, end = start + 1, quoted.end() - 1
    else:
        end -= len(_LITERAL_TAIL.search(value).group())
    if end - start < 1 or is_placeholder(text[start:end]):
        return None
    return start, end


def _xml_password(text: str, hit: int) -> Iterator[tuple[int, int, str]]:
    """The content of a password-named XML element whose start tag holds ``hit``."""
    start = hit
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.:-"):
        start -= 1
    if start == 0 or text[start - 1] != "<":
        return
    m = _XML_PASSWORD.match(text, hit)
    if m is None:
        return
    value = m.group("v").strip()
    if value and not is_placeholder(value) and not value.startswith("{"):
        yield m.start("v"), m.end("v"), "xml_password"


def find_credentials(text: str, hits: list[int]) -> Iterator[tuple[int, int, str]]:
    """``(start, end, kind)`` (``netrc_password``, ``xml_password``, ``basic_auth``, ``registry_token``) of each credential; ``hits``
    are positions of :data:`KEYWORDS` in ``text`` from the redactor's keyword pass."""
    commands = [h for h in hits if text[h : h + 12].lower().startswith(COMMAND_KEYWORDS)]
    yield from find_command_credentials(text, commands)
    for hit in sorted(set(hits)):
        word = text[hit : hit + 16].lower()  # long enough for the longest keyword
        if word.startswith(("password", "account")):
            span = _netrc_secret(text, hit)
            if span is not None:
                yield *span, "netrc_password"
            elif word.startswith("password"):
                yield from _xml_password(text, hit)
        elif word.startswith(("dockerconfigjson", "dockercfg")):
            m = _DOCKERCONFIG.match(text, hit + 9)
            if m:
                yield *m.span("v"), "basic_auth"
        elif word.startswith("basic"):
            m = _BASIC.match(text, hit)
            if m and _user_password(m.group("v")):
                yield *m.span("v"), "basic_auth"
        elif word.startswith(("identitytoken", "registrytoken")):
            m = _TOKEN_VALUE.match(text, hit + 13)
            if m and not is_placeholder(m.group("v")):
                yield *m.span("v"), "registry_token"
        elif word.startswith("auth"):
            m = _AUTH_VALUE.match(text, hit + 4)
            if m and _user_password(m.group("v")):
                yield *m.span("v"), "basic_auth"
