"""Replace secrets and e-mail addresses with fixed placeholders before text reaches the corpus.

A code model memorises and can later print what it was trained on, so credentials must never reach the
shards. Like BigCode for StarCoder's data, matches are *replaced* (the file stays useful) by fixed
placeholders: ``<KEY>`` (tokens and access keys), ``<PASSWORD>`` (the password of a
``scheme://user:password@host`` URL), ``<PRIVATE_KEY>`` (a whole ``-----BEGIN ... PRIVATE KEY-----``
block) and ``<EMAIL>``.

Only high-confidence detectors are used: the prefix-anchored patterns that ``detect-secrets`` maintains
(AWS, GitHub, GitLab, Slack, Stripe, OpenAI, PyPI, npm, SendGrid, Mailchimp, Azure storage, Square,
JWT, basic-auth URLs), applied to the whole text at once. Its entropy and keyword plugins are left out
on purpose: in source code they flag hashes, test vectors and every ``password = ...`` line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from detect_secrets.plugins import (
    aws,
    azure_storage_key,
    basic_auth,
    github_token,
    gitlab_token,
    jwt,
    mailchimp,
    npm,
    openai,
    pypi_token,
    sendgrid,
    slack,
    square_oauth,
    stripe,
)

__all__ = ["PLACEHOLDERS", "Redactor"]

PLACEHOLDERS = {"key": "<KEY>", "password": "<PASSWORD>", "private_key": "<PRIVATE_KEY>", "email": "<EMAIL>"}

_PRIVATE_KEY = re.compile(
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----.*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----",
    re.DOTALL,
)
# local@domain.tld; the TLD is letters only, so decorators (@property), matrix products (a @ b) and
# version pins (pkg@1.2.3) are not addresses. Found from each '@' outwards (a regex that starts with a
# character class would try every position of every file: 10x slower on the stdlib).
_AT = re.compile(r"@(?=[A-Za-z0-9])")
_EMAIL_LOCAL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}\Z")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
# Literal strings one of which a rule's match must contain: most files contain none, and a substring
# test is far cheaper than running a regex without a literal prefix over the whole text.
_NEEDLES = {
    "mailchimp_access_key": ("-us",),
    "slack_token": ("xox", "hooks.slack.com"),
    "stripe_access_key": ("k_live_",),
}


class _EmailFinder:
    """A ``finditer``-like object for e-mail addresses (see ``_AT``)."""

    groups = 0
    flags = 0

    @staticmethod
    def finditer(text: str) -> Iterator[re.Match[str] | tuple[int, int]]:
        for at in _AT.finditer(text):
            p = at.start()
            local = _EMAIL_LOCAL.search(text, max(0, p - 64), p)
            if local is None:
                continue
            domain = _EMAIL_DOMAIN.match(text, p + 1)
            if domain is not None:
                yield local.start(), domain.end()


def _plugin_classes() -> list[type]:
    return [
        aws.AWSKeyDetector,
        azure_storage_key.AzureStorageKeyDetector,
        basic_auth.BasicAuthDetector,
        github_token.GitHubTokenDetector,
        gitlab_token.GitLabTokenDetector,
        jwt.JwtTokenDetector,
        mailchimp.MailchimpDetector,
        npm.NpmDetector,
        openai.OpenAIDetector,
        pypi_token.PypiTokenDetector,
        sendgrid.SendGridDetector,
        slack.SlackDetector,
        square_oauth.SquareOAuthDetector,
        stripe.StripeDetector,
    ]


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


@dataclass
class _Rule:
    kind: str  # the stats key, e.g. "aws_access_key", "email"
    regex: re.Pattern[str]
    placeholder: str
    check: object = None  # optional callable(secret) -> bool (JWT: must decode)
    needles: tuple[str, ...] = ()


class Redactor:
    """``redact(text) -> (text, counts)``: the text with every detected secret replaced, and per-kind counts."""

    def __init__(self, secrets: bool = True, emails: bool = True) -> None:
        self.rules: list[_Rule] = []
        if secrets:
            self.rules.append(_Rule("private_key", _PRIVATE_KEY, PLACEHOLDERS["private_key"]))
            for cls in _plugin_classes():
                kind = _slug(cls.secret_type)
                placeholder = PLACEHOLDERS["password" if kind == "basic_auth_credentials" else "key"]
                check = getattr(cls, "is_formally_valid", None)
                for regex in cls.denylist:
                    needles = _NEEDLES.get(kind, ())
                    if kind == "aws_access_key" and regex.flags & re.IGNORECASE:
                        needles = ("aws",)
                    self.rules.append(_Rule(kind, regex, placeholder, check, needles))
        if emails:
            self.rules.append(_Rule("email", _EmailFinder, PLACEHOLDERS["email"], needles=("@",)))  # type: ignore[arg-type]

    def _spans(self, rule: _Rule, text: str) -> Iterator[tuple[int, int]]:
        if rule.needles:
            haystack = text.lower() if rule.regex.flags & re.IGNORECASE else text
            if not any(n in haystack for n in rule.needles):
                return
        for m in rule.regex.finditer(text):
            if isinstance(m, tuple):
                yield m
                continue
            group = 1 if rule.regex.groups and m.group(1) is not None else 0
            start, end = m.span(group)
            if end <= start:
                continue
            if callable(rule.check) and not rule.check(m.group(group)):
                continue
            yield start, end

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}
        for rule in self.rules:
            pieces: list[str] = []
            last = 0
            for start, end in self._spans(rule, text):
                if start < last:
                    continue  # overlapping match of a rule already applied
                pieces.append(text[last:start])
                pieces.append(rule.placeholder)
                last = end
                counts[rule.kind] = counts.get(rule.kind, 0) + 1
            if pieces:
                pieces.append(text[last:])
                text = "".join(pieces)
        return text, counts
