"""Held-out recall: credential formats that neither ``tests/secret_samples.py`` nor the rule-by-rule tests
(``test_redact.py``, ``test_redact_credentials.py``) use, drawn from a seeded generator.

Kept apart so the redactor's recall is measured on formats its rules were not written against. A
secret counts as caught only if no run of 8 of its characters survives, in its plain form or in the
base64 form the file stores it in. The failure message lists every format that survived.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from gitnetic.data.corpus.redact.redactor import Redactor
from tests.secret_samples import leaked

ALNUM = string.ascii_letters + string.digits
SEED = 20261207


def _r(rng: random.Random, n: int, alphabet: str = ALNUM + "!#*-_+") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Case:
    name: str
    secret: str  # what must not survive (besides its base64 form)
    text: str


def _cases(seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []

    def add(name: str, build: Callable[[str, str], str], alphabet: str = ALNUM + "!#*-_+") -> None:
        user, secret = _r(rng, 8, string.ascii_lowercase), _r(rng, rng.randint(14, 24), alphabet)
        cases.append(Case(name, secret, build(user, secret)))

    add(
        "npmrc-_auth",
        lambda u, s: f"registry=https://npm.corp.example/\n_auth = {_b64(f'{u}:{s}')}\nalways-auth=true\n",
    )
    add(
        "proxy-authorization",
        lambda u, s: f"CONNECT h:443 HTTP/1.1\nProxy-Authorization: Basic {_b64(f'{u}:{s}')}\n",
    )
    add(
        "git-extraheader",
        lambda u, s: f'[http "https://git.corp/"]\n\textraheader = AUTHORIZATION: basic {_b64(f"{u}:{s}")}\n',
    )
    add("git-credentials", lambda u, s: f"https://{u}:{s}@github.com\n", ALNUM)
    add(
        "pip-conf-index-url",
        lambda u, s: f"[global]\nindex-url = https://{u}:{s}@pypi.corp.example/simple\n",
        ALNUM,
    )
    add(
        "pypirc",
        lambda u, s: f"[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = {u}\npassword = {s}\n",
    )
    add(
        "composer-auth-json",
        lambda u, s: f'{{"http-basic": {{"repo.example.org": {{"username": "{u}", "password": "{s}"}}}}}}\n',
    )
    add(
        "wget-http-password",
        lambda u, s: f"wget --http-user={u} --http-password={s} https://files.corp/x.tgz\n",
    )
    add("jdbc-url-params", lambda u, s: f'url = "jdbc:mysql://db:3306/app?user={u}&password={s}"\n', ALNUM)
    add(
        "ansible-ssh-pass",
        lambda u, s: f"[web]\nweb1 ansible_host=10.0.0.5 ansible_user={u} ansible_ssh_pass={s}\n",
    )
    add(
        "maven-settings-xml",
        lambda u, s: (
            f"<server>\n  <id>nexus</id>\n  <username>{u}</username>\n  <password>{s}</password>\n</server>\n"
        ),
    )
    add(
        "k8s-dockerconfigjson",
        lambda u, s: (
            "data:\n  .dockerconfigjson: "
            + _b64('{"auths":{"r.io":{"auth":"' + _b64(f"{u}:{s}") + '"}}}')
            + "\n"
        ),
    )
    add(
        "netrc-in-dockerfile-heredoc",
        lambda u, s: f"RUN cat > /root/.netrc <<EOF\nmachine artifacts.corp\nlogin {u}\npassword {s}\nEOF\n",
    )
    add(
        "requests-basic-header-bytes",
        lambda u, s: f'req.add_header("Authorization", b"Basic " + b"{_b64(f"{u}:{s}")}")\n',
    )
    add(
        "docker-login-stdin-cfg",
        lambda u, s: (
            f'{{\n\t"auths": {{\n\t\t"registry.gitlab.com": {{\n\t\t\t"auth": "{_b64(f"{u}:{s}")}",\n\t\t\t"email": "{u}@corp.example"\n\t\t}}\n\t}}\n}}\n'
        ),
    )
    # second batch, written after the first had been run and its misses fixed (so held out again)
    add("pgpass", lambda u, s: f"db.internal:5432:app:{u}:{s}\n", ALNUM)
    add("docker-login-p", lambda u, s: f"docker login -u {u} -p {s} registry.corp.example\n")
    add("mysql-cli-p", lambda u, s: f"mysql -h db -u {u} -p{s} app < dump.sql\n", ALNUM)
    add("sshpass", lambda u, s: f"sshpass -p '{s}' ssh {u}@10.0.0.7 uptime\n")
    add("redis-requirepass", lambda u, s: f"bind 127.0.0.1\nrequirepass {s}\nmaxmemory 2gb\n", ALNUM)
    add("python-httpbasicauth", lambda u, s: f'r = requests.get(URL, auth=HTTPBasicAuth("{u}", "{s}"))\n')
    add("go-setbasicauth", lambda u, s: f'req.SetBasicAuth("{u}", "{s}")\n')
    add(
        "svn-cli-password",
        lambda u, s: f"svn checkout --username {u} --password {s} https://svn.corp/trunk\n",
    )
    add("smbclient-user-percent", lambda u, s: f"smbclient //fs/share -U {u}%{s} -c 'ls'\n", ALNUM)
    add("powershell-securestring", lambda u, s: f'$pw = ConvertTo-SecureString "{s}" -AsPlainText -Force\n')
    return cases


def _forms(case: Case) -> list[str]:
    """The secret, and every base64 word of the text that holds it (``user:secret``, a base64 JSON
    document holding that base64, ...), each of which must go."""
    forms = [case.secret]
    for word in case.text.replace('"', " ").replace("'", " ").split():
        word = word.rstrip(",;")
        if len(word) >= 12 and case.secret not in word and _holds(word, case.secret, depth=2):
            forms.append(word)
    return forms


def _holds(word: str, secret: str, depth: int) -> bool:
    """True when ``word`` is base64 of text holding ``secret``, directly or (``depth``) via base64."""
    try:
        decoded = base64.b64decode(word + "=" * (-len(word) % 4), validate=True).decode("utf-8")
    except ValueError:
        return False
    if secret in decoded:
        return True
    words = decoded.replace('"', " ").split()
    return depth > 1 and any(len(w) >= 12 and _holds(w, secret, depth - 1) for w in words)


def _survived(redactor: Redactor, cases: list[Case]) -> list[str]:
    survived = []
    for case in cases:
        out, _ = redactor.redact(case.text)
        if any(leaked(form, out) for form in _forms(case)):
            survived.append(case.name)
    return survived


def test_every_base64_form_is_checked() -> None:
    forms = {c.name: _forms(c) for c in _cases(SEED)}
    assert len(forms["k8s-dockerconfigjson"]) == 2 and len(forms["npmrc-_auth"]) == 2
    assert forms["pypirc"] == [next(c.secret for c in _cases(SEED) if c.name == "pypirc")]


def test_held_out_set_has_at_least_12_formats() -> None:
    assert len({c.name for c in _cases(SEED)}) >= 12


# Formats known to survive: a .pgpass line (host:port:db:user:password) has no keyword to anchor on.
KNOWN_MISSES = frozenset({"pgpass"})


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_held_out_recall_is_complete(seed: int) -> None:
    cases = _cases(seed)
    survived = _survived(Redactor(), cases)
    recall = 1 - len(survived) / len(cases)
    assert set(survived) <= KNOWN_MISSES, f"recall {recall:.2f}; survived: {survived}"


@pytest.mark.xfail(strict=True, reason="a .pgpass line has no keyword to anchor on (known miss)")
def test_known_misses_are_still_missed() -> None:
    cases = [c for c in _cases(SEED) if c.name in KNOWN_MISSES]
    assert not _survived(Redactor(), cases)
