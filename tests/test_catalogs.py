"""Every shipped language is complete and safe: each text in the code (extracted from the sources
as `pybabel extract` does, with babel.cfg) has a translation, the translation keeps the English
text's placeholders, and its markup stays inside the HTML subset both platforms render."""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot import i18n
from bot.render.text import ALLOWED_TAGS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [language for language in i18n.available() if language != i18n.SOURCE_LANGUAGE]
_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)[^>]*>")
_KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


@lru_cache(maxsize=1)
def texts_in_code() -> dict[str, str | None]:
    """msgid → plural msgid (None for a text without plural), from every source babel.cfg names."""
    found: dict[str, str | None] = {}
    for folder, method in (("bot", "python"), ("scheduler", "python"), ("adapters", "python"),
                           ("adapters/web/templates", "jinja2")):
        path = ROOT / folder
        if not path.exists():
            continue
        method_map = [("**.py", "python")] if method == "python" else [("**.html", "jinja2")]
        for _file, _line, message, _comments, _context in extract_from_dir(
                str(path), method_map=method_map, keywords=_KEYWORDS):
            if isinstance(message, tuple):
                found[message[0]] = message[1]
            elif message:
                found.setdefault(message, None)
    return found


@lru_cache(maxsize=None)
def catalog(language: str):
    with (i18n.LOCALES_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as po:
        return read_po(po, locale=language)


_PERCENT = re.compile(r"%\((\w+)\)[sd]")  # the page templates' placeholders (Jinja's newstyle gettext)


def placeholders(text: str) -> set[str]:
    """`{name}` placeholders (the bot's texts) and `%(name)s` ones (the page's templates)."""
    return ({name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            | {f"%{name}" for name in _PERCENT.findall(text)})


def tags(text: str) -> Counter:
    return Counter(match.group(0) if match.group(0).startswith("</") else f"<{match.group(1)}>"
                   for match in _TAG.finditer(text))


def test_two_languages_besides_english_are_shipped():
    assert {"es", "pt_BR"} <= set(SHIPPED)
    assert len(texts_in_code()) > 500  # the extraction really found the bot's texts


@pytest.mark.parametrize("language", SHIPPED)
def test_every_text_has_a_translation(language):
    translated = catalog(language)
    missing = []
    for msgid, plural in texts_in_code().items():
        message = translated.get(msgid)
        if message is None or message.fuzzy:
            missing.append(msgid)
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if plural is not None and len(forms) != translated.num_plurals:
            missing.append(msgid)
        elif not all(form.strip() for form in forms):
            missing.append(msgid)
    assert not missing, f"{len(missing)} texts have no {language} translation, e.g. {missing[:5]}"


def translations_of(language: str):
    """(English texts, translated forms) of each translated entry: one text and one form, or the
    singular and plural and every plural form."""
    for message in catalog(language):
        if message.id and message.string:
            yield ((message.id if isinstance(message.id, tuple) else (message.id,)),
                   (message.string if isinstance(message.string, tuple) else (message.string,)))


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_the_placeholders(language):
    wrong = []
    for ids, forms in translations_of(language):
        expected = set().union(*(placeholders(text) for text in ids))
        for form in forms:
            try:
                found = placeholders(form)
                form.format(**{name: "x" for name in found if not name.startswith("%")})
            except (ValueError, IndexError, KeyError) as error:
                wrong.append((ids[0], form, str(error)))
                continue
            # A plural form may leave the count out ("one vote"); nothing else may go missing or appear.
            if not found <= expected or expected - found - {"count", "%num"}:
                wrong.append((ids[0], form, sorted(expected ^ found)))
    assert not wrong, f"{len(wrong)} {language} translations change placeholders, e.g. {wrong[:3]}"


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_the_markup(language):
    wrong = []
    for ids, forms in translations_of(language):
        english = tags(ids[0])
        for form in forms:
            # The same tags as the English (usage words like <name> count too: they must stay),
            # so a translation can add nothing outside the subset, and no <br> (Telegram refuses it).
            if tags(form) != english or "<br" in form:
                wrong.append((ids[0], form))
    assert not wrong, f"{len(wrong)} {language} translations break the markup, e.g. {wrong[:3]}"


def test_the_english_texts_use_only_the_html_subset():
    """What translators copy is sound: every real tag in the code's texts is one both platforms render
    (words in angle brackets, like <name> in a usage line, are not tags)."""
    real = {name for msgid in texts_in_code() for name in _TAG.findall(msgid)
            if name in _HTML_ELEMENTS}
    assert real <= ALLOWED_TAGS | _PAGE_TAGS, real - ALLOWED_TAGS


# Elements a text could use that are not in the chat subset, and the ones the transparency page's
# templates may also mark inline text with.
_HTML_ELEMENTS = frozenset({"b", "i", "u", "s", "code", "pre", "a", "blockquote", "br", "p", "div", "span", "em",
                            "strong", "script", "img", "h1", "h2", "h3", "ul", "li", "abbr", "time", "small"})
_PAGE_TAGS = frozenset({"strong", "em", "abbr", "time", "span", "small"})


def test_a_broken_translation_is_caught(tmp_path):
    """The checks above really fail: a catalog with a lost placeholder, a stray tag and a gap."""
    po = tmp_path / "xx.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "#{number} is closed."\nmsgstr "#{numero} está cerrada."\n\n'
                  'msgid "Use <code>{command}</code>."\nmsgstr "Usa <script>{command}</script>."\n',
                  encoding="utf-8")
    with po.open("rb") as handle:
        broken = read_po(handle, locale="es")
    first, second = (message for message in broken if message.id)
    assert placeholders(first.string) != placeholders(first.id)
    assert tags(second.string) != tags(second.id)
    assert broken.get("Another text") is None
