"""The pages' words: every string of the page and the admin page comes from the message
catalogs, English and French have the same messages with the same placeholders, and
every key the pages name exists."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[3] / "gateway/photosearch_gateway/static"
LANGUAGES = ("en", "fr")
PAGES = ("index.html", "admin.html")
SCRIPTS = (
    "app.js",
    "admin.js",
    "admin_catalog.js",
    "admin_imports.js",
    "contributor.js",
    "scan.js",
    "collection.js",
)
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# Said before the catalogs could load, so it cannot come from them.
UNTRANSLATABLE = {"The page's words did not load"}
FILE_NAMES = (".jpg", ".csv", ".js", ".json")
PLURAL = re.compile(r"_(zero|one|two|few|many|other)$")


def flat(tree: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def catalogs() -> dict[str, dict[str, str]]:
    return {
        lang: flat(json.loads((STATIC / f"locales/{lang}.json").read_text())) for lang in LANGUAGES
    }


def known(key: str, messages: dict[str, str]) -> bool:
    return key in messages or any(PLURAL.sub("", k) == key for k in messages)


def test_both_languages_have_every_message_with_the_same_placeholders(catalogs) -> None:
    en, fr = catalogs["en"], catalogs["fr"]
    assert set(en) == set(fr), set(en) ^ set(fr)
    for key in en:
        assert en[key].strip() and fr[key].strip(), key
        assert set(PLACEHOLDER.findall(en[key])) == set(PLACEHOLDER.findall(fr[key])), key


class PageText(HTMLParser):
    """Text outside any element that names its message (data-i18n), and every key named."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.loose: list[str] = []
        self.keys: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.keys += [v for k, v in attrs if k.startswith("data-i18n") and v]
        for attribute in ("placeholder", "title", "aria-label", "alt"):
            if names.get(attribute) and f"data-i18n-{attribute}" not in names:
                self.loose.append(f"{tag}[{attribute}]={names[attribute]}")
        if tag not in {"meta", "link", "input", "img", "br"}:
            self.stack.append("data-i18n" in names or tag in {"script", "style"})

    def handle_endtag(self, tag: str) -> None:
        if tag not in {"meta", "link", "input", "img", "br"} and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if re.search(r"[A-Za-z]{2,}", data) and not any(self.stack):
            self.loose.append(data.strip())


@pytest.mark.parametrize("page", PAGES)
def test_every_string_of_the_pages_comes_from_the_catalogs(page: str, catalogs) -> None:
    parser = PageText()
    parser.feed((STATIC / page).read_text())
    assert parser.loose == [], f"{page}: text without data-i18n"
    missing = [key for key in parser.keys if not known(key, catalogs["en"])]
    assert missing == [], f"{page} names keys no catalog has"


def script_keys(source: str) -> tuple[list[str], list[str]]:
    """Literal keys (t("a.b"), button("a.b")) and the prefixes of built ones (t(`a.${x}`))."""
    literal = re.findall(r'["\']([a-z_]+(?:\.[a-z_]+)+)["\']', source)
    built = re.findall(r"`([a-z_]+(?:\.[a-z_]+)*\.)\$\{", source)
    return literal, built


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_scripts_name_only_keys_that_exist_and_spell_out_no_sentence(
    script: str, catalogs
) -> None:
    source = (STATIC / "js" / script).read_text()
    code = "\n".join(line for line in source.splitlines() if not line.strip().startswith("//"))
    literal, built = script_keys(code)
    namespaces = {key.split(".")[0] for key in catalogs["en"]}
    for key in literal:
        if key.split(".")[0] in namespaces and not key.endswith(FILE_NAMES):
            assert known(key, catalogs["en"]), f"{script}: {key}"
    for prefix in built:
        assert any(k.startswith(prefix) for k in catalogs["en"]), f"{script}: {prefix}*"
    sentences = re.findall(r"[\"'`]([A-Z][a-z]+(?: [a-z']+)+)", code)
    assert [s for s in sentences if not any(s.startswith(u) for u in UNTRANSLATABLE)] == []
