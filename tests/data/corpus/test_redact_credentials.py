"""``.netrc`` passwords and base64 basic-auth credentials (``redact/credentials.py``), rule by rule.

A secret counts as redacted only if no run of 8 of its characters survives, in its plain form nor in
the base64 form it is stored in (``tests/secret_samples.leaked``). The formats of the held-out recall
set (``test_redact_recall.py``) are kept out of this file.
"""

from __future__ import annotations

import base64

import pytest

from gitnetic.data.corpus.redact.redactor import Redactor
from tests.secret_samples import leaked

PASSWORD = "Zq8#mPx2vL9wRt4K"
LOW_ENTROPY = "hunter2hunter2"  # netrc passwords are replaced whatever their entropy
USER = "deploybot"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def _gone(secret: str, out: str) -> bool:
    b64 = base64.b64encode(f"{USER}:{secret}".encode()).decode()
    return not leaked(secret, out) and not leaked(b64, out)


NETRC = {
    "one-line": "machine github.com login octo password {pw}\n",
    "multi-line": "machine github.com\n  login octo\n  password {pw}\n",
    "password-first": "password {pw} login octo machine github.com\n",
    "default": "default login anonymous password {pw}\n",
    "default-only": "default password {pw}\n",
    "account": "machine ftp.example.org login octo account {pw} password {pw}\n",
    "tabs-crlf": "machine\tgithub.com\r\n\tlogin\tocto\r\n\tpassword\t{pw}\r\n",
    "extra-blanks": "machine    github.com      login   octo\n\n\n     password      {pw}     \n",
    "comments-between": "machine github.com # work\n# the bot\nlogin octo\n# rotate yearly\npassword {pw}\n",
    "quoted": 'machine github.com login octo password "{pw}"\n',
    "hash-first": "machine github.com login octo password #{pw}\n",
    "start-of-file": "password {pw} machine h login u",
    "end-of-file": "machine h login u password {pw}",
    "two-entries": "machine a.org login x password {pw}\nmachine b.org login y password Other9Pass7Word\n",
    "in-python-string": 'NETRC = "machine api.heroku.com login me@x.org password {pw}\\n"\n',
    "in-shell-echo": "RUN echo 'machine gitlab.com login ci password {pw}' > ~/.netrc\n",
    "unicode-around": "# café ☕\nmachine ünïcode.example login ñame password {pw}\n# fin ✓\n",
    "long-line": "x" * 5000 + " machine h login u password {pw} " + "y" * 5000,
}


@pytest.mark.parametrize("name", NETRC)
@pytest.mark.parametrize("secret", [PASSWORD, LOW_ENTROPY])
def test_netrc_password_is_replaced_whole(redactor: Redactor, name: str, secret: str) -> None:
    out, counts = redactor.redact(NETRC[name].format(pw=secret))
    assert _gone(secret, out), out
    assert counts.get("netrc_password", 0) + counts.get("generic_password", 0) >= 1, counts
    assert "machine" in out or "password" in out  # the file keeps its shape


def test_netrc_keeps_host_and_login(redactor: Redactor) -> None:
    out, counts = redactor.redact(NETRC["one-line"].format(pw=PASSWORD))
    assert out == "machine github.com login octo password <PASSWORD>\n" and counts == {"netrc_password": 1}
    out, _ = redactor.redact(NETRC["quoted"].format(pw=PASSWORD))
    assert out == 'machine github.com login octo password "<PASSWORD>"\n'


DOCKER = {
    "config.json": '{{\n  "auths": {{\n    "https://index.docker.io/v1/": {{\n      "auth": "{b64}"\n    }}\n  }}\n}}\n',
    "compact": '{{"auths":{{"ghcr.io":{{"auth":"{b64}"}}}}}}',
    "crlf-tabs": '{{\r\n\t"auths": {{\r\n\t\t"r.io": {{\t"auth" :\t"{b64}" }}\r\n\t}}\r\n}}',
    "python-dict": 'cfg = {{"auths": {{"quay.io": {{"auth": "{b64}", "email": ""}}}}}}\n',
    "start-of-file": '"auth": "{b64}"',
    "header": "GET /v2/ HTTP/1.1\r\nHost: r.io\r\nAuthorization: Basic {b64}\r\n\r\n",
    "header-lower": "authorization: basic {b64}\n",
    "header-python": 'headers = {{"Authorization": "Basic {b64}"}}\n',
    "header-fstring-end": "curl -H 'Authorization: Basic {b64}'",
    "unicode-around": "# ключ ☃\nAuthorization: Basic {b64} ✓\n",
}


@pytest.mark.parametrize("name", DOCKER)
def test_basic_auth_base64_is_replaced_whole(redactor: Redactor, name: str) -> None:
    out, counts = redactor.redact(DOCKER[name].format(b64=BASIC))
    assert not leaked(BASIC, out) and not leaked(PASSWORD, out), out
    assert sum(counts.values()) == 1, counts  # basic_auth, or gitleaks' curl rule first


@pytest.mark.parametrize("key", ["identitytoken", "registrytoken", "IdentityToken"])
def test_docker_registry_tokens(redactor: Redactor, key: str) -> None:
    token = "rT4kQ9vX2mZ8wL1pN6sB3cD"
    out, counts = redactor.redact(f'{{"auths": {{"r.io": {{"{key}": "{token}"}}}}}}')
    assert not leaked(token, out) and counts, out


def test_url_password_is_already_covered(redactor: Redactor) -> None:
    out, counts = redactor.redact(f"https://{USER}:{PASSWORD}@git.example.org/repo.git\n")
    assert not leaked(PASSWORD, out) and counts == {"url_password": 1}


CODE = [
    "password = password + b'\\x00' * (blocksize - len(password))\n",
    "login = account = password = ''\n",
    "super().__init__(host, port, user, password, readermode, timeout)\n",
    "Enter your login and password below.\n",
    "# the password is hashed before login\n",
    "auth = basic_auth(user, password)\n",
    'AUTH_TYPE = "basic"\nauth: Basic realm="Restricted"\n',
    '"auth": "dXNlcm5hbWU="\n',  # base64 of "username": no colon, not a credential
    "machine = Machine()\nlogin(machine, password)\n",
    "The Basic Multilingual Plane holds most characters.\n",
    "into account Python-side default UPDATE values or generation functions,\n",  # sqlalchemy docs
]


@pytest.mark.parametrize("text", CODE)
def test_code_and_prose_stay(redactor: Redactor, text: str) -> None:
    assert redactor.redact(text) == (text, {})


COMMANDS = {
    "long-flag-equals": "deploy --db-password={pw} --host db\n",
    "long-flag-space-quoted": 'run.sh --password "{pw}"\n',
    "mysqldump-attached": "mysqldump -u root -p{pw} shop > shop.sql\n",
    "redis-masterauth": "replicaof 10.0.0.1 6379\nmasterauth {pw}\n",
    "auth-tuple": "session.auth = ('svc', '{pw}')\n",
    "proxy-auth-call": 'HTTPProxyAuth("svc", "{pw}")\n',
    "sshpass-rsync-crlf": "sshpass -p {pw} rsync -a src/ host:/dst\r\n",
}


@pytest.mark.parametrize("name", COMMANDS)
def test_command_line_and_call_passwords(redactor: Redactor, name: str) -> None:
    secret = "kP3vR8zQ2mW7xT5n"
    out, counts = redactor.redact(COMMANDS[name].format(pw=secret))
    assert not leaked(secret, out) and counts, out


def test_xml_password_element(redactor: Redactor) -> None:
    text = f"<datasource>\n  <db.password>{PASSWORD}</db.password>\n</datasource>\n"
    out, counts = redactor.redact(text)
    assert out == "<datasource>\n  <db.password><PASSWORD></db.password>\n</datasource>\n", out
    assert counts == {"xml_password": 1}


COMMAND_CODE = [
    'parser.add_argument("--password", help="the account password")\n',
    "usage: tool --password PASSWORD\n",
    'docker login -u "$CI_USER" -p "$CI_TOKEN" registry\n',
    "mysql -u root -p shop\n",
    "session.auth = (user, password)\n",
    "client = HTTPBasicAuth(username, password)\n",
    "--password <password>   the password to use\n",
    "<password>${env.DB_PASSWORD}</password>\n",
    "information can be provided via the --username and --password options\n",  # pip's docs
]


@pytest.mark.parametrize("text", COMMAND_CODE)
def test_command_placeholders_and_code_stay(redactor: Redactor, text: str) -> None:
    assert redactor.redact(text) == (text, {})
