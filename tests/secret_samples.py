"""Planted credentials for the redaction tests and ``bench/redact.py``: formats x contexts, and the leak test.

Every secret is freshly drawn from a seeded generator in its provider's real layout (prefix, length,
alphabet), a few characters longer than the shortest form a pattern accepts where the format allows
it, and placed in realistic file contexts: a Python assignment, a dict literal, a function argument,
YAML, JSON, ``.env``, TOML, a URL, a comment, a diff line (and, for private keys, multi-line PEM in
each of them). :func:`leaked` is the bench's and the tests' criterion: a secret counts as caught only
if no run of :data:`RUN` of its characters survives anywhere in the output.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

RUN = 8
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _jwt(rng: random.Random) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header = part({"alg": "HS256", "typ": "JWT"})
    body = part(
        {"sub": _r(rng, string.digits, 10), "name": _r(rng, string.ascii_letters, 12), "iat": 1700000000}
    )
    return f"{header}.{body}.{_r(rng, URLSAFE, 43)}"


def _pem(kind: str) -> Callable[[random.Random], str]:
    def make(rng: random.Random) -> str:
        lines = [_r(rng, B64, 64) for _ in range(rng.randint(5, 9))] + [_r(rng, B64, 28) + "=="]
        return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"

    return make


def _password(rng: random.Random) -> str:
    """A generated or a human-made password (word + digits + symbol), 10-24 characters."""
    if rng.random() < 0.3:
        word = rng.choice(["Summer", "Dragon", "Monkey", "Shadow", "Sunshine", "Princess", "Football"])
        return word + _r(rng, string.digits, rng.randint(3, 5)) + rng.choice("!#*.-_") + _r(rng, ALNUM, 2)
    return _r(rng, ALNUM + "!#*.-_+=", rng.randint(12, 24))


@dataclass(frozen=True)
class Format:
    name: str  # e.g. "github-classic"
    make: Callable[[random.Random], str]  # a fresh secret
    var: str  # the variable / key name it would be stored under
    style: str = "token"  # token | named (found by its name only) | pem | url (a URL password) | dsn


FORMATS: tuple[Format, ...] = (
    # cloud
    Format(
        "aws-access-key-id",
        lambda r: "AKIA" + _r(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        "aws_access_key_id",
    ),
    Format("aws-secret-access-key", lambda r: _r(r, B64, 40), "aws_secret_access_key", "named"),
    Format("gcp-api-key", lambda r: "AIza" + _r(r, URLSAFE, 35), "google_api_key"),
    Format(
        "azure-ad-client-secret",
        lambda r: _r(r, ALNUM, 3) + "8Q~" + _r(r, ALNUM + "_~.-", 34),
        "azure_client_secret",
    ),
    Format("azure-storage-key", lambda r: _r(r, B64, 86) + "==", "AccountKey", "named"),
    Format("digitalocean-pat", lambda r: "dop_v1_" + _r(r, HEX, 64), "do_token"),
    # VCS
    Format("github-classic", lambda r: "ghp_" + _r(r, ALNUM, 36), "github_token"),
    Format(
        "github-fine-grained", lambda r: "github_pat_" + _r(r, ALNUM, 22) + "_" + _r(r, ALNUM, 59), "gh_pat"
    ),
    Format("github-oauth", lambda r: "gho_" + _r(r, ALNUM, 36), "oauth_token"),
    Format("github-app", lambda r: "ghs_" + _r(r, ALNUM, 36), "app_token"),
    Format("gitlab-pat", lambda r: "glpat-" + _r(r, URLSAFE, 20), "gitlab_token"),
    # payment
    Format("stripe-live-secret", lambda r: "sk_live_" + _r(r, ALNUM, 99), "stripe_key"),
    Format("stripe-restricted", lambda r: "rk_live_" + _r(r, ALNUM, 40), "stripe_restricted_key"),
    # chat
    Format(
        "slack-bot",
        lambda r: f"xoxb-{_r(r, string.digits, 12)}-{_r(r, string.digits, 13)}-{_r(r, ALNUM, 24)}",
        "slack_bot_token",
    ),
    Format(
        "slack-user",
        lambda r: (
            f"xoxp-{_r(r, string.digits, 12)}-{_r(r, string.digits, 12)}-{_r(r, string.digits, 13)}-{_r(r, HEX, 32)}"
        ),
        "slack_user_token",
    ),
    Format(
        "slack-webhook",
        lambda r: (
            f"https://hooks.slack.com/services/T{_r(r, ALNUM, 10)}/B{_r(r, ALNUM, 10)}/{_r(r, ALNUM, 24)}"
        ),
        "slack_webhook",
    ),
    Format(
        "discord-bot",
        lambda r: f"M{_r(r, ALNUM, 25)}.{_r(r, URLSAFE, 6)}.{_r(r, URLSAFE, 38)}",
        "discord_token",
        "named",
    ),
    Format(
        "discord-webhook",
        lambda r: f"https://discord.com/api/webhooks/{_r(r, string.digits, 19)}/{_r(r, URLSAFE, 68)}",
        "discord_webhook",
    ),
    # AI providers
    Format(
        "openai-legacy", lambda r: "sk-" + _r(r, ALNUM, 20) + "T3BlbkFJ" + _r(r, ALNUM, 20), "openai_api_key"
    ),
    Format(
        "openai-project",
        lambda r: "sk-proj-" + _r(r, URLSAFE, 74) + "T3BlbkFJ" + _r(r, URLSAFE, 74),
        "openai_key",
    ),
    Format("openai-project-longer", lambda r: "sk-proj-" + _r(r, URLSAFE, 156), "OPENAI"),
    Format("anthropic", lambda r: "sk-ant-api03-" + _r(r, URLSAFE, 93) + "AA", "anthropic_api_key"),
    Format("huggingface", lambda r: "hf_" + _r(r, string.ascii_letters, 34), "hf_token"),
    # registries
    Format("npm", lambda r: "npm_" + _r(r, ALNUM, 36), "npm_token"),
    Format("pypi", lambda r: "pypi-AgEIcHlwaS5vcmc" + _r(r, URLSAFE, 140), "pypi_token"),
    # messaging / e-mail
    Format("twilio-api-key", lambda r: "SK" + _r(r, HEX, 32), "twilio_key"),
    Format("sendgrid", lambda r: "SG." + _r(r, URLSAFE, 22) + "." + _r(r, URLSAFE, 43), "sendgrid_api_key"),
    Format("mailgun", lambda r: "key-" + _r(r, HEX, 32), "mailgun_api_key"),
    Format("shopify", lambda r: "shpat_" + _r(r, "abcdef0123456789", 32), "shopify_token"),
    Format("databricks", lambda r: "dapi" + _r(r, HEX, 32), "databricks_token"),
    Format("jwt", _jwt, "auth_token"),
    # private keys
    Format("rsa-private-key", _pem("RSA PRIVATE KEY"), "private_key", "pem"),
    Format("ec-private-key", _pem("EC PRIVATE KEY"), "ec_key", "pem"),
    Format("openssh-private-key", _pem("OPENSSH PRIVATE KEY"), "ssh_key", "pem"),
    Format("pgp-private-key", _pem("PGP PRIVATE KEY BLOCK"), "pgp_key", "pem"),
    Format("pkcs8-private-key", _pem("PRIVATE KEY"), "service_account_key", "pem"),
    # URLs with credentials, connection strings, generic secrets
    Format("postgres-url", _password, "DATABASE_URL", "url"),
    Format("mysql-url", _password, "db_url", "url"),
    Format("mongodb-url", _password, "MONGO_URI", "url"),
    Format("redis-url", _password, "cache_url", "url"),
    Format("sqlserver-connection-string", _password, "connection_string", "dsn"),
    Format("password", _password, "db_password", "named"),
    Format("generic-secret", lambda r: _r(r, ALNUM, 40), "client_secret", "named"),
    Format("generic-api-key-hex", lambda r: _r(r, HEX, 32), "API_KEY", "named"),
)


def url_for(fmt: Format, secret: str) -> str:
    """The value a ``url``/``dsn`` format stores: a URL or connection string holding the password."""
    scheme = {
        "postgres-url": "postgresql",
        "mysql-url": "mysql",
        "mongodb-url": "mongodb+srv",
        "redis-url": "rediss",
    }
    if fmt.style == "dsn":
        return f"Server=tcp:db1.database.windows.net,1433;Database=app;User ID=admin;Password={secret};Encrypt=True;"
    return f"{scheme[fmt.name]}://app_user:{secret}@db.internal.example.com:5432/app"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


# Each context: (format, secret) -> a document. PEM blocks span lines in every context.
def _python(f: Format, s: str) -> str:
    value = f'"""{s}"""' if f.style == "pem" else json.dumps(s)
    return f"import os\n\n\n{f.var} = {value}\nTIMEOUT = 30\n"


def _dict(f: Format, s: str) -> str:
    return f'SETTINGS = {{\n    "host": "api.example.com",\n    "{f.var}": {json.dumps(s)},\n    "retries": 3,\n}}\n'


def _argument(f: Format, s: str) -> str:
    value = json.dumps(s)
    if f.style in ("named", "url", "dsn"):
        return f"client = connect(host='db.example.com', {f.var.lower()}={value}, timeout=10)\n"
    return f"client = Client({value}, timeout=10)\nclient.ping()\n"


def _yaml(f: Format, s: str) -> str:
    if f.style == "pem":
        return f"service:\n  name: billing\n  {f.var}: |\n{_indent(s, '    ')}\n  port: 8080\n"
    return f"service:\n  name: billing\n  {f.var}: {s}\n  port: 8080\n"


def _json(f: Format, s: str) -> str:
    return json.dumps({"name": "billing", f.var: s, "port": 8080}, indent=2) + "\n"


def _env(f: Format, s: str) -> str:
    value = json.dumps(s) if f.style in ("pem", "dsn") else s
    return f"APP_ENV=production\n{f.var.upper()}={value}\nLOG_LEVEL=info\n"


def _toml(f: Format, s: str) -> str:
    value = f'"""\n{s}"""' if f.style == "pem" else json.dumps(s)
    return f'[service]\nname = "billing"\n{f.var} = {value}\nport = 8080\n'


def _url(f: Format, s: str) -> str:
    if f.style in ("url", "dsn"):
        return f'engine = create_engine("{s}")\n'
    return f'resp = requests.get("https://api.example.com/v1/items?{f.var.lower()}={s}&limit=10")\n'


def _comment(f: Format, s: str) -> str:
    if f.style == "pem":
        return "def sign(data):\n" + _indent(s, "    # ") + "\n    return hmac(data)\n"
    if f.style in ("named", "url", "dsn"):
        return f"def connect():\n    # old value: {f.var} = '{s}'\n    return open_db()\n"
    return f"def connect():\n    # TODO rotate {s} before release\n    return open_db()\n"


def _diff(f: Format, s: str) -> str:
    body = f'"""{s}"""' if f.style == "pem" else json.dumps(s)
    added = _indent(f"{f.var} = {body}", "+")
    return (
        "Add settings\n\ndiff --git a/settings.py b/settings.py\n--- a/settings.py\n+++ b/settings.py\n"
        f"@@ -1,2 +1,3 @@\n import os\n{added}\n TIMEOUT = 30\n"
    )


CONTEXTS: dict[str, Callable[[Format, str], str]] = {
    "python": _python,
    "dict": _dict,
    "argument": _argument,
    "yaml": _yaml,
    "json": _json,
    "env": _env,
    "toml": _toml,
    "url": _url,
    "comment": _comment,
    "diff": _diff,
}


@dataclass(frozen=True)
class Planted:
    format: str
    context: str
    secret: str  # what must not survive (the password alone for url/dsn formats)
    text: str  # the document holding it


def planted(seed: int = 0, per_pair: int = 1) -> Iterator[Planted]:
    """``per_pair`` fresh secrets for every (format, context) pair."""
    rng = random.Random(seed)
    for fmt in FORMATS:
        for context, build in CONTEXTS.items():
            for _ in range(per_pair):
                secret = fmt.make(rng)
                value = url_for(fmt, secret) if fmt.style in ("url", "dsn") else secret
                yield Planted(fmt.name, context, secret, build(fmt, value))


# Values that stand for a secret in docs, tests and templates: a generic-secret detector must leave them
# alone (the negatives the entropy threshold is chosen against, with the clean stdlib).
PLACEHOLDER_VALUES = (
    "changeme", "change-me", "password", "password1", "passw0rd", "secret", "secret123", "mysecret",
    "test1234", "testtest", "test-token", "dummy", "dummy_token", "foobar", "foobar123", "example",
    "xxx", "xxxxxxxx", "********", "<your-token>", "<password>", "${TOKEN}", "{{ api_token }}",
    "%(password)s", "TODO", "REPLACE_ME", "your-api-key-here", "insert-token-here", "fake-token",
    "not-a-real-secret", "12345678", "abcdefgh", "aaaaaaaaaa", "token123", "admin", "admin123",
    "pass1234", "qwerty123", "letmein", "default", "none", "null", "placeholder", "sample-key",
)  # fmt: skip


def placeholders() -> Iterator[tuple[str, str]]:
    """``(value, document)``: every placeholder under a secret's name in every context."""
    names = {"password": "db_password", "secret": "client_secret", "token": "api_token"}
    for value in PLACEHOLDER_VALUES:
        for var in names.values():
            for build in CONTEXTS.values():
                yield value, build(Format("placeholder", lambda r, v=value: v, var, "named"), value)


def secret_runs(secret: str) -> set[str]:
    """Every run of :data:`RUN` characters of the secret (per line, for multi-line PEM bodies)."""
    runs: set[str] = set()
    for line in secret.split("\n"):
        if line.startswith("-----"):
            continue  # PEM header/footer lines are public text
        runs.update(line[i : i + RUN] for i in range(len(line) - RUN + 1))
    return runs


def leaked(secret: str, output: str) -> bool:
    """True when any run of :data:`RUN` characters of ``secret`` survives in ``output``."""
    return any(run in output for run in secret_runs(secret))
