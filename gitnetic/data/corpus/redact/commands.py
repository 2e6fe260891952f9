"""Passwords given on a command line or to an auth call: ``--password X``, ``sshpass -p X``,
``mysql -pX``, ``docker login -p X``, ``redis requirepass X``, ``smbclient -U user%X``,
``HTTPBasicAuth("u", "X")`` / ``SetBasicAuth(u, "X")`` (any ``...Auth(`` call: the second argument when
it is a literal), ``auth=("u", "X")``, ``ConvertTo-SecureString "X" -AsPlainText``.

Scripts, Dockerfiles, CI files and READMEs carry these with no ``=`` after a secret-named variable, so
the generic check misses them. The value is replaced whatever its entropy (a command-line password is
a password); placeholders (``$PASS``, ``<password>``, ``PASSWORD``) stay. Run only at the keywords the
redactor's single pass finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gitnetic.data.corpus.redact.generic import is_placeholder

__all__ = ["KEYWORDS", "PROSE", "find_command_credentials"]

KEYWORDS = ("--pass", "sshpass", "mysql", "mariadb", "docker login", "requirepass", "masterauth",
            "auth(", "auth=(", "auth = (", "securestring", "smbclient")  # fmt: skip

# words that make "login and password below" or "the --password option" prose, not a netrc entry
PROSE = frozenset(
    {"a", "an", "and", "or", "the", "to", "is", "are", "was", "be", "your", "my", "our", "their", "his",
     "her", "its", "for", "of", "in", "on", "as", "at", "by", "with", "from", "if", "not", "no", "this",
     "that", "these", "those", "then", "else", "name", "below", "above", "here", "there", "again",
     "option", "options", "flag", "flags", "argument", "arguments", "must", "can", "will", "should",
     "may", "instead", "only", "also", "value", "values", "none", "null", "true", "false"}
)  # fmt: skip
# a value: a quoted literal or a bare word up to a blank or a shell/code delimiter
_VALUE = r"""(?:"(?P<dq>[^"\n]{1,300})"|'(?P<sq>[^'\n]{1,300})'|(?P<bare>[^\s"'`;&|)]{1,300}))"""
_LONG_FLAG = re.compile(r"--[\w-]*?pass(?:word|wd)?(?:=|[ \t]+)" + _VALUE, re.IGNORECASE)
_SHORT_P = re.compile(r"[ \t]-p(?:[ \t]+)?" + _VALUE)  # -p X (sshpass, docker login)
_ATTACHED_P = re.compile(r"[ \t]-p" + _VALUE)  # -pX (mysql: "-p X" would prompt, X is the database)
_DIRECTIVE = re.compile(r"(?:requirepass|masterauth)[ \t]+" + _VALUE, re.IGNORECASE)
# Foo.BasicAuth("user", "X") / SetBasicAuth(user, "X") / auth=("user", "X"): the second argument
_SECOND_ARG = re.compile(
    r"""[\w.]*(?:[ \t]*=[ \t]*)?\([ \t]*(?:"[^"\n]*"|'[^'\n]*'|[\w.]+)[ \t]*,[ \t]*""" + _VALUE
)
_SMB_USER = re.compile(r"[ \t](?:-U|--user)[ \t=]*[^\s%'\"]+%" + _VALUE)  # smbclient -U user%X
_SECURE_STRING = re.compile(r"securestring[ \t]+(?:-string[ \t]+)?" + _VALUE, re.IGNORECASE)


def _value(m: re.Match[str], quoted_only: bool = False) -> tuple[int, int] | None:
    group = next(g for g in ("dq", "sq", "bare") if m.group(g) is not None)
    if quoted_only and group == "bare":
        return None
    value = m.group(group)
    if len(value) < 4 or is_placeholder(value) or value.lower().rstrip(".,:") in PROSE:
        return None
    if value.lower() in ("password", "passwd", "pass"):
        return None
    return m.span(group)


def _line(text: str, hit: int) -> tuple[int, int]:
    return text.rfind("\n", 0, hit) + 1, (text.find("\n", hit) + 1 or len(text) + 1) - 1


def find_command_credentials(text: str, hits: list[int]) -> Iterator[tuple[int, int, str]]:
    """``(start, end, "cli_password")`` of each password given on a command line or to a call."""
    for hit in sorted(set(hits)):
        word = text[hit : hit + 12].lower()
        found: tuple[int, int] | None = None
        if word.startswith("--pass"):
            m = _LONG_FLAG.match(text, hit)
            found = _value(m) if m else None
        elif word.startswith(("sshpass", "docker login")):
            m = _SHORT_P.search(text, hit, _line(text, hit)[1])
            found = _value(m) if m else None
        elif word.startswith(("mysql", "mariadb")):
            m = _ATTACHED_P.search(text, hit, _line(text, hit)[1])
            found = _value(m) if m else None
        elif word.startswith(("requirepass", "masterauth")):
            m = _DIRECTIVE.match(text, hit)
            found = _value(m) if m else None
        elif word.startswith("auth"):
            m = _SECOND_ARG.match(text, hit)
            found = _value(m, quoted_only=True) if m else None
        elif word.startswith("smbclient"):
            m = _SMB_USER.search(text, hit, _line(text, hit)[1])
            found = _value(m) if m else None
        elif word.startswith("securestring"):
            m = _SECURE_STRING.match(text, hit)
            found = _value(m, quoted_only=True) if m else None
        if found is not None:
            yield *found, "cli_password"
