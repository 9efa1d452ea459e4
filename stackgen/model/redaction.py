"""Redaction built-ins: the secret and PII shapes the log agents replace before a line leaves
the host, and the RE2 check every redaction or parse regex passes at load time.

Promtail's `replace` stage and Alloy's `stage.replace` (the same Go code) replace the text
of every capture group that took part in a match with `replace` and keep the rest of the
match. So each regex below captures exactly the secret, never its key or scheme, and a
regex may offer several alternative groups (a quoted value that may hold spaces, or a bare
word): only the one that matched is replaced.

The regexes are RE2 (Go's `regexp`): no lookarounds, no backreferences, no Luhn check. That
is why a bare run of 16 digits is not a card number by default (order ids, trace ids and
millisecond timestamps look the same); card numbers count when written in groups or next
to a card key, and `bare_card_numbers` is the opt-in for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stackgen import goregex
from stackgen.model.types import RedactionPattern

REDACTED = "<redacted>"


def key_value(keys: str) -> str:
    """A secret written as `key=value`, `key: value`, `"key": "value"` or `'key': 'value'`;
    `keys` is an RE2 alternation matched anywhere in a word (`db_password` counts). The value is
    the whole quoted string (spaces and escaped quotes included) or a bare word up to the
    next space, quote, `&`, `,`, `;` or `}`."""
    return (
        rf"""(?i)(?:{keys})["']?\s*[:=]\s*"""
        r"""(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s"'&,;}]+))"""
    )


@dataclass(frozen=True)
class Builtin:
    name: str
    default: bool  # on when the spec says nothing, or lists `defaults`
    what: str  # one line for README and the rendered config's comment
    patterns: tuple[RedactionPattern, ...]
    example: tuple[str, str]  # a line, and what reaches Loki


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX4 = r"[0-9A-Fa-f]{1,4}"
# Card prefixes of the networks that issue 16-digit cards (Visa, Mastercard incl. the
# 2-series, Discover), and Amex (15 digits, grouped 4-6-5).
_CARD16 = r"(?:4[0-9]{3}|5[1-5][0-9]{2}|2[2-7][0-9]{2}|6011|65[0-9]{2})"

BUILTINS: tuple[Builtin, ...] = (
    Builtin(
        "url_credentials",
        True,
        "the password in a URL's user-info (database DSNs, proxy URLs)",
        (
            RedactionPattern(
                "url-credentials", r"""\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@"']*:([^\s/?#@"']+)@""", REDACTED
            ),
        ),
        ("dsn=postgres://app:s3cret@db:5432/shop", "dsn=postgres://app:<redacted>@db:5432/shop"),
    ),
    Builtin(
        "passwords",
        True,
        "password, passwd, pwd and passphrase values, quoted (spaces kept inside) or bare",
        (RedactionPattern("passwords", key_value("password|passwd|pwd|passphrase"), REDACTED),),
        ('{"user":"bob","password":"correct horse"}', '{"user":"bob","password":"<redacted>"}'),
    ),
    Builtin(
        "tokens",
        True,
        "Authorization headers (Basic, Bearer, Digest, ...), Bearer tokens, and token, secret, session, cookie values",
        (
            RedactionPattern(
                "authorization-headers",
                r"""(?i)authorization["']?\s*[:=]\s*["']?(?:(?:basic|bearer|digest|negotiate|token)\s+)?"""
                r"""([^\s"',;]+)""",
                REDACTED,
            ),
            RedactionPattern("bearer-tokens", r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})", REDACTED),
            RedactionPattern(
                "tokens",
                key_value(r"token|secret|session(?:[_-]?id)?|sessionid|cookie|set-cookie|client[_-]?secret"),
                REDACTED,
            ),
        ),
        ("Authorization: Basic YWxhZGRpbjpvcGVu", "Authorization: Basic <redacted>"),
    ),
    Builtin(
        "api_keys",
        True,
        "api_key, apikey, access_key (and access_key_id), private_key values",
        (
            RedactionPattern(
                "api-keys",
                key_value(r"api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?|private[_-]?key|x-api-key"),
                REDACTED,
            ),
        ),
        ("calling upstream api_key=9f8e7d6c5b4a", "calling upstream api_key=<redacted>"),
    ),
    Builtin(
        "cloud_keys",
        True,
        "keys by their shape wherever they stand: AWS access key ids, Google API keys, GitHub, "
        "Slack and Stripe tokens, Slack webhook paths",
        (
            RedactionPattern(
                "aws-access-key-ids", r"\b((?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|ANPA|APKA)[A-Z0-9]{16})\b", REDACTED
            ),
            RedactionPattern(
                "aws-secret-keys",
                r"""(?i)aws[_-]?secret[_-]?access[_-]?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})""",
                REDACTED,
            ),
            RedactionPattern("google-api-keys", r"\b(AIza[0-9A-Za-z_-]{35})", REDACTED),
            RedactionPattern(
                "github-tokens",
                r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
                REDACTED,
            ),
            RedactionPattern("slack-tokens", r"\b(xox[abposr]-[A-Za-z0-9-]{10,})", REDACTED),
            RedactionPattern("stripe-keys", r"\b((?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,})", REDACTED),
            RedactionPattern("slack-webhooks", r"hooks\.slack\.com/services/([A-Za-z0-9/_-]+)", REDACTED),
        ),
        ("uploading with AKIAIOSFODNN7EXAMPLE", "uploading with <redacted>"),
    ),
    Builtin(
        "jwts",
        True,
        "JSON Web Tokens anywhere in a line (three base64url parts, the first two starting eyJ)",
        (RedactionPattern("jwts", r"\b(eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*)", REDACTED),),
        ("ws connect ?t=eyJhbGciOi.eyJzdWIiOi.SflKxwRJ", "ws connect ?t=<redacted>"),
    ),
    Builtin(
        "emails",
        True,
        "email addresses",
        (RedactionPattern("emails", r"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})", "<email>"),),
        ("sent receipt to jane@example.com", "sent receipt to <email>"),
    ),
    Builtin(
        "credit_cards",
        True,
        "card numbers written in groups (4-4-4-4, Amex 4-6-5) with a card network's prefix, or any "
        "13-19 digits after a card key (card, card_number, pan, cc)",
        (
            RedactionPattern(
                "credit-cards",
                rf"\b({_CARD16}(?:[ -][0-9]{{4}}){{3}}|3[47][0-9]{{2}}[ -][0-9]{{6}}[ -][0-9]{{5}})\b",
                "<card>",
            ),
            RedactionPattern(
                "card-fields",
                r"""(?i)\b(?:card|card[_-]?number|cardnumber|pan|cc|cc[_-]?number)["']?\s*[:=]\s*["']?"""
                r"([0-9](?:[ -]?[0-9]){12,18})\b",
                "<card>",
            ),
        ),
        ("card 4111 1111 1111 1111 declined", "card <card> declined"),
    ),
    Builtin(
        "ip_addresses",
        False,
        "IPv4 addresses and IPv6 addresses (full, or compressed with ::); opt-in, as version "
        "numbers like 1.2.3.4 look the same",
        (
            RedactionPattern("ipv4-addresses", rf"\b({_OCTET}(?:\.{_OCTET}){{3}})\b", "<ip>"),
            RedactionPattern(
                "ipv6-addresses",
                rf"(?i)\b((?:{_HEX4}:){{7}}{_HEX4}|(?:{_HEX4}:){{1,6}}:(?:{_HEX4}:){{0,5}}{_HEX4}|(?:{_HEX4}:){{1,7}}:)(?:[^0-9A-Za-z:]|$)",
                "<ip>",
            ),
        ),
        ("login from 203.0.113.9", "login from <ip>"),
    ),
    Builtin(
        "bare_card_numbers",
        False,
        "13-19 digits with a card network's prefix and nothing around them; opt-in, as RE2 "
        "cannot check Luhn and ids of that length look the same",
        (
            RedactionPattern(
                "bare-card-numbers",
                r"\b(4[0-9]{12}(?:[0-9]{3}){0,2}|(?:5[1-5]|2[2-7])[0-9]{14}|3[47][0-9]{13}|6(?:011|5[0-9]{2})[0-9]{12,15})\b",
                "<card>",
            ),
        ),
        ("charged 4111111111111111", "charged <card>"),
    ),
)

BUILTIN_NAMES = tuple(b.name for b in BUILTINS)
DEFAULT_BUILTINS = tuple(b.name for b in BUILTINS if b.default)
_BY_NAME = {b.name: b for b in BUILTINS}


def builtin_names(requested: list[str] | None) -> tuple[str, ...]:
    """The built-ins a spec switches on, in the fixed order above (URL credentials before
    passwords, so a DSN loses its password, not its host). None means the defaults; the
    word `defaults` in a list stands for them."""
    wanted = set(DEFAULT_BUILTINS if requested is None else requested)
    if "defaults" in wanted:
        wanted |= set(DEFAULT_BUILTINS)
    return tuple(name for name in BUILTIN_NAMES if name in wanted)


def builtin_patterns(names: tuple[str, ...]) -> list[RedactionPattern]:
    return [pattern for name in names for pattern in _BY_NAME[name].patterns]


def re2_incompatibility(pattern: str, need_group: bool = True) -> str | None:
    """Why Go's regexp (RE2), which Promtail and Alloy run, would refuse the pattern, or None;
    friendlier words for the usual cases, then goregex's verdict."""
    if re.search(r"\(\?[=!]|\(\?<[=!]", pattern):
        return "lookahead/lookbehind is not supported by RE2 (Promtail and Alloy are Go); rewrite without it"
    if re.search(r"(?<!\\)(?:\\\\)*\\[1-9]", pattern):
        return "backreferences are not supported by RE2; rewrite without them"
    error = goregex.compile_error(pattern)
    if error and error.startswith("\\C"):
        return error
    if error:
        return f"RE2 (Promtail and Alloy are Go) refuses it: {error}"
    if need_group and goregex.groups(pattern) == 0:
        return "needs a capture group: the replace stage replaces what the group captures"
    return None
