"""The catalogue (lambdas/common/messages.py): every sentence in English and German, rendered both ways.

Fails on a missing or empty translation, a German text that is the English one (or still English),
placeholders that differ between the two, a message the code asks for that does not exist, and an
entry nothing uses.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from lambdas.common.messages import CATALOGUE, LANGUAGES, msg, say

ROOT = Path(__file__).resolve().parents[2]
# Entries that are the same in both languages on purpose (names, layout, loanwords German uses).
IDENTICAL = {
    "mail.server",
    "mail.ok",
    "mail.problem",
    "mail.alarm_line",
    "finding.title",
    "finding.alarm_title",
    "verify.kind.ami",
    "status.restore_run",
}
# English words that have no place in a German sentence (German words spelt alike are left out:
# "in", "an", "am", "so", "was", "die", "war", "also").
ENGLISH = {
    "the", "is", "are", "of", "and", "has", "have", "not", "no", "newest", "failed", "found", "hours",
    "days", "target", "none", "passed", "kept", "backup", "backups", "attention", "needs", "need",
    "everything", "fine", "check", "when", "which", "with", "from", "this", "that", "there", "still",
    "been", "its", "it", "or", "at", "on", "for", "by", "be", "after", "your", "you", "what", "then",
    "again", "every", "good", "old", "older", "than", "should", "could", "missing", "listed", "quota",
    "used", "sent", "read", "week", "last", "were",
}  # fmt: skip
QUOTED = re.compile(r"«[^»]*»|'[^']*'|\"[^\"]*\"|\{[^}]*\}")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def english_words(text: str) -> list[str]:
    """The English words in a German text, with quoted names, placeholders and code left out."""
    plain = QUOTED.sub(" ", text)
    plain = re.sub(r"\S*[/_=]\S*", " ", plain)  # paths, keys, settings
    plain = re.sub(r"backupctl(?: [\w-]+){1,3}|\S+@\S+", " ", plain)  # commands, addresses
    plain = re.sub(r"\b(?:SchoolBackup|sb|i)-\S+", " ", plain)  # names of alarms, backups, instances
    return [
        w
        for w in re.findall(r"(?<![\w-])[A-Za-z]+(?![\w-])", plain)
        if w.lower() in ENGLISH and not w.isupper()
    ]


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_message_exists_in_both_languages_with_the_same_placeholders(key: str) -> None:
    en, de = CATALOGUE[key]
    assert en.strip() and de.strip(), f"{key}: empty text"
    assert _placeholders(en) == _placeholders(de), f"{key}: the placeholders differ"
    if key not in IDENTICAL:
        assert en != de, f"{key}: the German text is the English one (untranslated)"
    assert "ß" not in de, f"{key}: Swiss German writes ss"
    assert english_words(de) == [], f"{key}: English in the German text: {de!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_renders_with_its_values(language: str) -> None:
    for key, (en, _) in CATALOGUE.items():
        values = dict.fromkeys(_placeholders(en), "X1")
        text = say(key, language, **values)
        assert not re.search(r"\{[a-z_]+\}", text), f"{key}: a placeholder was left in {text!r}"


def test_the_english_words_check_can_fail() -> None:
    assert english_words("Die neueste Sicherung is missing") == ["is", "missing"]
    assert english_words("Klicken Sie auf «AWS Notification - Subscription Confirmation»") == []


def _used_keys() -> tuple[set[str], set[str]]:
    """Keys the code names literally, and prefixes of keys it builds (f"kind.{kind}")."""
    literal: set[str] = set()
    prefixes: set[str] = set()
    files = [p for d in ("lambdas", "infra", "cli") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in CATALOGUE:
                literal.add(node.value)
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                head = str(node.values[0].value)
                if any(k.startswith(head) for k in CATALOGUE) and "." in head:
                    prefixes.add(head)
            left = node.left if isinstance(node, ast.BinOp) else None
            head = left.value if isinstance(left, ast.Constant) and isinstance(left.value, str) else ""
            if "." in head and any(k.startswith(head) for k in CATALOGUE):
                prefixes.add(head)
    return literal, prefixes


def test_every_message_the_code_asks_for_exists_and_every_entry_is_used() -> None:
    literal, prefixes = _used_keys()
    unused = [k for k in CATALOGUE if k not in literal and not any(k.startswith(p) for p in prefixes)]
    assert unused == [], f"entries nothing uses: {unused}"
    asked: set[str] = set()
    for path in [p for d in ("lambdas", "infra", "cli") for p in (ROOT / d).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("msg", "say")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                asked.add(str(node.args[0].value))
    assert asked and asked <= set(CATALOGUE), f"missing from the catalogue: {sorted(asked - set(CATALOGUE))}"


def test_an_unknown_message_is_named() -> None:
    with pytest.raises(KeyError, match=re.escape("no message 'mail.nothing' in lambdas/common/messages.py")):
        msg("mail.nothing")


def test_nested_messages_render_in_the_outer_language() -> None:
    damaged = msg("state.damaged", what=(msg("state.object_missing", name="files.tar.gz"),))
    assert damaged.render("en") == "is damaged: files.tar.gz is missing"
    assert damaged.render("de") == "ist beschädigt: files.tar.gz fehlt"
