"""Redaction built-ins over a corpus, under RE2, exactly as both rendered agents run them.

The regexes are read back from the rendered promtail/promtail.yml and alloy/config.alloy
(not from the model), and applied in file order with Promtail's `replace` semantics
(tests/support/re2check.py). Three kinds of lines:
- planted: a secret or PII shape a built-in covers; the secret must be gone;
- near misses: lines that look like one but are not (ids, versions, words); unchanged;
- ordinary: log lines of the kinds real services write; unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from stackgen.model.redaction import BUILTIN_NAMES, BUILTINS, DEFAULT_BUILTINS, builtin_names
from tests.support.re2check import redact
from tests.test_logs import render_spec_text as render_text

ROOT = Path(__file__).resolve().parent.parent

# (built-in, line, secret): with the built-in on, `secret` must not reach Loki.
PLANTED = [
    # url_credentials
    ("url_credentials", "connecting to postgres://app:s3cret@db:5432/shop", "s3cret"),
    ("url_credentials", 'dsn="mysql://root:hunter2!@tcp(db:3306)/x"', "hunter2!"),
    ("url_credentials", "redis://:RedisPass99@cache:6379/0 ready", "RedisPass99"),
    ("url_credentials", "proxy https://svc-user:p%40ss@proxy.corp:3128", "p%40ss"),
    ("url_credentials", "amqp://guest:guestpw@rabbit:5672/ vhost=/", "guestpw"),
    # passwords
    ("passwords", '{"level":"info","msg":"login","password":"hunter2!x"}', "hunter2!x"),
    ("passwords", '{"password": "correct horse battery"}', "correct horse battery"),
    ("passwords", '{"password":"with \\"escaped\\" quote"}', 'with \\"escaped\\" quote'),
    ("passwords", "user=bob password=S3cr3tP@ss action=login", "S3cr3tP@ss"),
    ("passwords", "POST /api/login pwd: letmein123", "letmein123"),
    ("passwords", "DB_PASSWORD=Sup3rS3cret", "Sup3rS3cret"),
    ("passwords", "config: {'db_password': 'two words'}", "two words"),
    ("passwords", "PassPhrase=ring-of-keys", "ring-of-keys"),
    ("passwords", "GET /login?user=a&password=qwerty123&next=/", "qwerty123"),
    # tokens
    ("tokens", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "eyJhbGciOiJIUzI1NiJ9"),
    ("tokens", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("tokens", '{"headers":{"authorization":"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}}', "YWxhZGRpbjpvcGVuc2VzYW1l"),
    (
        "tokens",
        "authorization=Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
        "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
    ),
    ("tokens", "curl -H 'Authorization: Digest username=x' failed", "username=x"),
    ("tokens", "upstream said: bearer abcdefgh12345678 rejected", "abcdefgh12345678"),
    ("tokens", '{"msg":"refresh","token":"tok_9f8e7d6c5b4a"}', "tok_9f8e7d6c5b4a"),
    ("tokens", "session=9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d expired", "9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d"),
    ("tokens", "session_id: 77ab12cd34 closed", "77ab12cd34"),
    ("tokens", "Set-Cookie: sid=abc123def456; HttpOnly", "sid=abc123def456"),
    ("tokens", "oauth client_secret=Zm9vYmFyYmF6cXV4 sent", "Zm9vYmFyYmF6cXV4"),
    ("tokens", "refresh_token=r1.AAAbbbCCC ok", "r1.AAAbbbCCC"),
    # api_keys
    ("api_keys", "calling upstream api_key=9f8e7d6c5b4a3f2e", "9f8e7d6c5b4a3f2e"),
    ("api_keys", '{"apiKey": "sk_live_51H8x2bC"}', "sk_live_51H8x2bC"),
    ("api_keys", "aws_access_key_id=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("api_keys", "X-API-Key: 0123456789abcdef", "0123456789abcdef"),
    ("api_keys", "private_key='-----BEGIN PRIVATE KEY-----MIIE'", "-----BEGIN PRIVATE KEY-----MIIE"),
    # cloud_keys
    ("cloud_keys", "uploading with AKIAIOSFODNN7EXAMPLE to s3", "AKIAIOSFODNN7EXAMPLE"),
    ("cloud_keys", "temp creds ASIAY34FZKBOKMUTVV7A issued", "ASIAY34FZKBOKMUTVV7A"),
    (
        "cloud_keys",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("cloud_keys", "maps key AIzaSyA1234567890abcdefghijklmnopqrstuv used", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    (
        "cloud_keys",
        "git clone with ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    ("cloud_keys", "pat github_pat_11ABCDEFG0123456789_abcdefghij", "github_pat_11ABCDEFG0123456789_abcdefghij"),
    ("cloud_keys", "slack xoxb-123456789012-abcdefghijkl posted", "xoxb-123456789012-abcdefghijkl"),
    ("cloud_keys", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc charge", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "cloud_keys",
        "POST https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX 200",
        "T000/B000/XXXXXXXXXXXXXXXX",
    ),
    # jwts
    (
        "jwts",
        "ws connect ?t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "eyJzdWIiOiIxMjM0In0",
    ),
    ("jwts", '{"id_token":"eyJraWQiOiJrMSJ9.eyJlbWFpbCI6ImFAYi5jIn0.c2ln"}', "eyJlbWFpbCI6ImFAYi5jIn0"),
    # emails
    ("emails", "sent receipt to jane.doe+shop@example.co.uk", "jane.doe+shop@example.co.uk"),
    ("emails", '{"to":"ops@sub.example.org","msg":"x"}', "ops@sub.example.org"),
    # credit_cards
    ("credit_cards", "card 4111 1111 1111 1111 declined", "4111 1111 1111 1111"),
    ("credit_cards", "paid with 5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("credit_cards", "amex 3782 822463 10005 ok", "3782 822463 10005"),
    ("credit_cards", "charge card=5500000000000004 ok", "5500000000000004"),
    ("credit_cards", '{"card_number":"4242424242424242"}', "4242424242424242"),
    ("credit_cards", "pan: 6011000990139424 verified", "6011000990139424"),
    # ip_addresses (opt-in)
    ("ip_addresses", "login from 203.0.113.9 ok", "203.0.113.9"),
    ("ip_addresses", '{"remote_addr":"198.51.100.23","status":200}', "198.51.100.23"),
    ("ip_addresses", "peer 2001:db8::ff00:42:8329 connected", "2001:db8::ff00:42:8329"),
    ("ip_addresses", "client=2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("ip_addresses", "X-Forwarded-For: 192.0.2.1, 10.0.0.7", "192.0.2.1"),
    # bare_card_numbers (opt-in)
    ("bare_card_numbers", "charged 4111111111111111 eur 20", "4111111111111111"),
    ("bare_card_numbers", "retry 378282246310005", "378282246310005"),
]

# Lines no default built-in may touch: they look like a secret and are not one.
NEAR_MISSES = [
    "password reset requested",  # the word alone is no secret
    "password: (none set)",  # hm: a value, but "(none" is not a secret either way: see below
    "order_id=1234567890123456 shipped",  # 16 digits, no card key, no grouping
    "trace 4000000000000002 span 17",  # a 16-digit id with a Visa prefix, bare
    "ts=1732268400123 request_id=4f9c2e took 5ms",  # a millisecond timestamp
    "upgraded to 1.24.3.1 from 1.24.2",  # a version, not an IP (ip_addresses is opt-in)
    "basic authentication is disabled",  # "basic" without an Authorization header
    "std::vector<int> resized",
    "token bucket refilled: 40 tokens",  # "token" with no separator after it
    "AKIA is the prefix of AWS key ids",  # a prefix alone
    "see https://example.com/docs#section-2 for help",  # a URL without user-info
    "jdbc at db:5432 took 12ms",
]
ORDINARY = [
    '{"level":"info","msg":"GET /products 200","duration_ms":12}',
    "GET /api/v1/orders?page=2 200 34ms",
    "worker started, 4 threads, queue=webhooks",
    "order 12345 shipped to warehouse B",
    "retrying in 5s (attempt 3/5)",
    "2026-01-29T10:30:00.123Z  INFO clipper::ingest: segment 42 uploaded in 1.2s",
    "[INGEST] 3 files queued",
    'level=warn msg="slow query" table=orders took=1.5s',
    "E0129 10:30:00.123456    1 controller.go:114] sync failed: context deadline exceeded",
    "127 requests, p99=250ms, errors=0",
    "uuid=550e8400-e29b-41d4-a716-446655440000 created",
]
# "password: (none set)" is redacted by design (a value follows the key); keep it out of the
# must-not-change set but document the choice by asserting it.
NEAR_MISSES.remove("password: (none set)")


def alloy_replacements(alloy: str) -> list[tuple[str, str]]:
    out = []
    for block in re.findall(r"stage\.replace \{(.*?)\n  \}", alloy, re.S):
        expression = re.search(r'expression = ("(?:[^"\\]|\\.)*")', block)
        replace = re.search(r'replace    = ("(?:[^"\\]|\\.)*")', block)
        assert expression and replace, block
        out.append((json.loads(expression.group(1)), json.loads(replace.group(1))))
    return out


def promtail_replacements(promtail: str) -> list[tuple[str, str]]:
    stages = yaml.safe_load(promtail)["scrape_configs"][0]["pipeline_stages"]
    return [(s["replace"]["expression"], s["replace"]["replace"]) for s in stages if "replace" in s]


def rendered_with(builtins: list[str] | None) -> dict[str, list[tuple[str, str]]]:
    spec = yaml.safe_load((ROOT / "slos.yaml").read_text())
    spec["logs"]["redaction"] = {} if builtins is None else {"builtin": builtins}
    files = render_text(yaml.safe_dump(spec))
    agents = {
        "promtail": promtail_replacements(files["promtail/promtail.yml"]),
        "alloy": alloy_replacements(files["alloy/config.alloy"]),
    }
    assert agents["promtail"] == agents["alloy"]  # the same stages in the same order
    return agents


@pytest.fixture(scope="module")
def every_builtin() -> dict[str, list[tuple[str, str]]]:
    return rendered_with(list(BUILTIN_NAMES))


@pytest.fixture(scope="module")
def defaults() -> dict[str, list[tuple[str, str]]]:
    return rendered_with(None)


def apply_all(line: str, rules: list[tuple[str, str]]) -> str:
    for pattern, replacement in rules:
        line = redact(line, pattern, replacement)
    return line


@pytest.mark.parametrize("agent", ["promtail", "alloy"])
@pytest.mark.parametrize(("builtin", "line", "secret"), PLANTED, ids=[f"{b}:{s[:16]}" for b, _, s in PLANTED])
def test_planted_secrets_are_gone(every_builtin, agent: str, builtin: str, line: str, secret: str) -> None:  # type: ignore[no-untyped-def]
    out = apply_all(line, every_builtin[agent])
    assert secret not in out, out
    assert re.search(r"<(redacted|email|card|ip)>", out), out


@pytest.mark.parametrize(("builtin", "line", "secret"), PLANTED, ids=[f"{b}:{s[:16]}" for b, _, s in PLANTED])
def test_each_secret_is_caught_by_its_own_builtin(builtin: str, line: str, secret: str) -> None:
    """Switching a built-in on is what redacts its shapes (not an accident of another)."""
    rules = [(p.regex, p.replace) for b in BUILTINS if b.name == builtin for p in b.patterns]
    assert secret not in apply_all(line, rules)


def test_opt_in_builtins_are_off_by_default(defaults) -> None:  # type: ignore[no-untyped-def]
    for builtin, line, _ in PLANTED:
        out = apply_all(line, defaults["promtail"])
        if builtin in ("ip_addresses", "bare_card_numbers"):
            assert out == line, (builtin, out)


@pytest.mark.parametrize("line", NEAR_MISSES + ORDINARY)
def test_near_misses_and_ordinary_lines_pass_unchanged(defaults, line: str) -> None:  # type: ignore[no-untyped-def]
    assert apply_all(line, defaults["promtail"]) == line


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_pass_even_with_every_builtin(every_builtin, line: str) -> None:  # type: ignore[no-untyped-def]
    assert apply_all(line, every_builtin["promtail"]) == line


def test_a_value_after_a_password_key_is_always_redacted(defaults) -> None:  # type: ignore[no-untyped-def]
    assert apply_all("password: (none set)", defaults["promtail"]) == "password: <redacted> set)"


def test_json_stays_json_after_redaction(defaults) -> None:  # type: ignore[no-untyped-def]
    line = '{"user":"bob","password":"correct horse","token":"a b","to":"x@example.com"}'
    assert json.loads(apply_all(line, defaults["promtail"])) == {
        "user": "bob",
        "password": "<redacted>",
        "token": "<redacted>",
        "to": "<email>",
    }


@pytest.mark.parametrize("builtin", BUILTINS, ids=BUILTIN_NAMES)
def test_readme_lists_each_builtin_with_its_example(builtin) -> None:  # type: ignore[no-untyped-def]
    line, reaches_loki = builtin.example
    assert apply_all(line, [(p.regex, p.replace) for p in builtin.patterns]) == reaches_loki
    readme = (ROOT / "README.md").read_text()
    row = next((r for r in readme.splitlines() if r.startswith(f"| `{builtin.name}`")), None)
    assert row is not None, f"README has no row for {builtin.name}"
    assert f"`{line}`" in row and f"`{reaches_loki}`" in row, row
    assert ("yes" in row.split("|")[2]) == builtin.default


def test_defaults_word_and_explicit_lists() -> None:
    assert builtin_names(None) == DEFAULT_BUILTINS
    with_ips = builtin_names(["defaults", "ip_addresses"])
    assert set(with_ips) == {*DEFAULT_BUILTINS, "ip_addresses"}
    assert with_ips == tuple(sorted(with_ips, key=BUILTIN_NAMES.index))  # stackgen's order, not the list's
    assert builtin_names(["emails", "url_credentials"]) == ("url_credentials", "emails")
    assert builtin_names(["emails"]) == ("emails",)
    assert builtin_names([]) == ()
