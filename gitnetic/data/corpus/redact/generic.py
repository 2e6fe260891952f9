"""Generic secrets: a high-entropy literal assigned to, or keyed by, a name that says secret.

Provider formats (:mod:`gitnetic.data.corpus.redact.rules`) miss what has no format: ``db_password =
"s7Kq!x2vR9"``, ``secret: 9f8e...`` in YAML, ``API_KEY=...`` in ``.env``. This module finds the
names (``password``, ``passwd``, ``pwd``, ``passphrase``, ``secret``, ``token``, ``credentials``,
``api_key``, ``access_key``, ``private_key``, ``client_secret``, ``account_key``, ... in any case and
with ``_``/``-``/``.``/camelCase separators) followed by an assignment or key separator of Python,
YAML, JSON, TOML, INI, ``.env``, shell, JS, Go or PHP (``=``, ``:``, ``:=``, ``=>``, ``: str =``) and a
quoted or bare value. The value is a secret when it is at least :data:`MIN_LENGTH` characters, its
Shannon entropy reaches :data:`ENTROPY_THRESHOLD` (chosen on ``bench/redact.py``: see
``bench/RESULTS.md``), and it is not a placeholder or code:

* placeholders: ``changeme``, ``<your-token>``, ``xxx``, ``***``, ``${VAR}``, ``{{ var }}``, ``%s``,
  an environment-variable name (``GITHUB_TOKEN``), a path or URL, prose (contains a blank);
* code: a bare value that is a plain identifier (``password = default_password``) or is followed by
  a call, subscript or attribute (``os.environ[...]``, ``get_token()``).

Names that only talk about a secret (``password_file``, ``token_url``, ``secret_name``, ...) are
skipped by their last word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gitnetic.data.corpus.redact.rules import global_allowlist, shannon_entropy

__all__ = ["ENTROPY_THRESHOLD", "KEYWORDS", "MIN_LENGTH", "find_generic_secrets", "is_placeholder"]

# Chosen on bench/redact.py: of the values swept 0.1 apart, the only one that keeps recall 1.0 on the planted generic secrets (3.3
# loses some) and redacts none of the placeholders (3.1 takes "qwerty123", "not-a-real-secret").
ENTROPY_THRESHOLD = 3.2
MIN_LENGTH = 8

_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "passcode"})
_SECRET_WORDS = frozenset({"secret", "secrets", "token", "tokens", "credential", "credentials", "creds"})
# Words that make a following "key" a secret's name (api_key, AccountKey, ...).
_KEY_QUALIFIERS = frozenset(
    {"api", "access", "private", "secret", "account", "signing", "encryption", "master", "auth",
     "client", "app", "consumer", "license", "storage", "admin", "service", "subscription", "webhook"}
)  # fmt: skip
# Substrings (lower case) whose presence makes a name worth a look; found by the redactor's keyword pass.
# "key" alone is everywhere in code (dict keys), so only its qualified compounds are keywords.
KEYWORDS = ("pass", "pwd", "secret", "token", "cred", "auth")
KEYWORDS += tuple(q + sep + "key" for q in sorted(_KEY_QUALIFIERS) for sep in ("", "_", "-", "."))
# Single words that are such a compound written without a separator (APIKEY, SecretKey lower-cased).
_COMPOUNDS = re.compile(
    r"(?:api|access|private|secret|account|signing|encryption|master|auth|client|app|consumer|storage)"
    r"(?:key|token|secret)|.*(?:password|passwd|secret|token)"
)
_NOT_SECRET_LAST = frozenset(
    {"file", "files", "path", "dir", "name", "names", "env", "var", "field", "type", "length", "len",
     "prompt", "url", "uri", "header", "param", "params", "policy", "regex", "re", "pattern", "min",
     "max", "count", "label", "id", "ids", "kind", "size", "format", "fmt", "mode", "hint", "help",
     "msg", "message", "text", "required", "error", "expiry", "expires", "timeout", "ttl", "endpoint",
     "cls", "class", "index", "idx", "attr", "store", "manager", "provider", "func", "callback",
     "handler", "method", "hash", "hashed", "digest", "salt", "prefix", "suffix", "char", "chars",
     "reset", "changed", "set", "enabled", "used", "str", "bytes", "location", "col", "column", "sep"}
)  # fmt: skip
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_IDENT_RUN = re.compile(r"[A-Za-z0-9_.\-]*")  # a run of _IDENT_CHARS
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# After the name: an optional closing quote/bracket, an optional type annotation, the separator, then
# a quoted value (optional string prefix such as b/r/f) or a bare one.
_ASSIGN = re.compile(
    r"""["'`]?\]?[ \t]*(?::[ \t]*[A-Za-z_][\w\[\], .|]*?[ \t]*(?==))?(?::=|=>|\?=|=(?!=)|:(?![:=]))[ \t]*"""
    r"""(?:[rbuRBUfF]{0,2}(?:"(?P<dq>(?:[^"\\\n]|\\.){1,300})"|'(?P<sq>(?:[^'\\\n]|\\.){1,300})'"""
    r"""|`(?P<bq>[^`\n]{1,300})`)|(?P<bare>[^\s"'`,;&()\[\]{}]{1,300})(?P<after>.?))"""
)
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_.]*\Z")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_PLACEHOLDER_PARTS = (
    "your", "example", "changeme", "change_me", "change-me", "placeholder", "dummy", "redacted",
    "xxxx", "****", "<", ">", "${", "{{", "%(", "%s", "$(", "...", "todo", "fixme", "://", "test",
    "fake", "sample", "here", "replace", "insert", "foobar",
)  # fmt: skip


def _name_words(name: str) -> list[str]:
    return [w.lower() for part in re.split(r"[_.\-]+", name) for w in _WORDS.findall(part)]


def _secret_name(name: str) -> str | None:
    """``"password"`` or ``"secret"`` when ``name`` says it holds one, else None."""
    words = _name_words(name)
    if not words or words[-1] in _NOT_SECRET_LAST:
        return None
    if any(w in _PASSWORD_WORDS or w.endswith(("password", "passwd")) for w in words):
        return "password"
    if any(w in _SECRET_WORDS or _COMPOUNDS.fullmatch(w) for w in words):
        return "secret"
    for before, word in zip(words, words[1:], strict=False):
        if word == "key" and before in _KEY_QUALIFIERS:
            return "secret"
    return None


def is_placeholder(value: str) -> bool:
    """True for values that stand for a secret without being one (see the module doc)."""
    low = value.lower()
    if any(part in low for part in _PLACEHOLDER_PARTS) or any(c.isspace() for c in value):
        return True
    if value.startswith(("$", "/", "./", "~/", "%")) or _ENV_NAME.match(value):
        return True
    regexes, stopwords = global_allowlist()
    return any(r.search(value) for r in regexes) or any(s in low for s in stopwords)


def find_generic_secrets(
    text: str, hits: list[int], threshold: float = ENTROPY_THRESHOLD
) -> Iterator[tuple[int, int, str]]:
    """``(start, end, "password" | "secret")`` of each secret value; ``hits`` are positions of
    :data:`KEYWORDS` in ``text`` (one per occurrence, from the redactor's keyword pass)."""
    done_until = -1
    for hit in sorted(hits):
        if hit < done_until:
            continue  # a second keyword inside a name already looked at ("secret_key")
        end = _IDENT_RUN.match(text, hit).end()
        done_until = end
        m = _ASSIGN.match(text, end)
        if m is None:
            continue  # most hits ("pass" statements, "author"): the name's start is not needed
        start = hit
        while start > 0 and text[start - 1] in _IDENT_CHARS:
            start -= 1
        kind = _secret_name(text[start:end].strip(".-"))
        if kind is None:
            continue
        group = next(g for g in ("dq", "sq", "bq", "bare") if m.group(g) is not None)
        value = m.group(group)
        if group == "bare":
            after = m.group("after")
            if after in ("(", "[", "{") or _PLAIN_IDENTIFIER.match(value):
                continue  # code, not a literal
        if len(value) < MIN_LENGTH or shannon_entropy(value) < threshold or is_placeholder(value):
            continue
        yield m.start(group), m.end(group), kind
