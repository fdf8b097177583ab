"""Item labels from file and folder names, for imports from a folder of photos.

    LOCH-JP001_dark_magician_pscr.jpg  ->  name "Dark Magician", variant "PScR",
                                           set code "LOCH-JP001"

1. A set-code prefix (3-5 letters/digits, "-", an optional 1-2 letter region,
   3 digits, an optional letter, then "_") is removed and kept as the set code.
2. A last word that is a rarity (pscr, scr, ur, sr, op, utr, cr, ea, gmr; any case)
   becomes the variant, written the usual way ("PScR", "UtR", ...).
3. Underscores become spaces; runs of spaces become one.
4. Title case: every word capitalised (also after a hyphen: "Blue-Eyes"), short
   joining words (of, the, and, ...) lower case except first; in a name that mixes
   cases, words with capitals of their own ("DVD", "iPhone") are kept as written.
"""

import re
from dataclasses import dataclass

RARITIES = {
    "pscr": "PScR",
    "scr": "ScR",
    "ur": "UR",
    "sr": "SR",
    "op": "OP",
    "utr": "UtR",
    "cr": "CR",
    "ea": "EA",
    "gmr": "GMR",
}
_SET_CODE = re.compile(r"^(?P<code>[A-Za-z0-9]{3,5}-[A-Za-z]{0,2}\d{3}[A-Za-z]?)(?:_+|$)")
_MINOR_WORDS = {
    "a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "nor",
    "of", "on", "or", "the", "to", "vs", "with",
}  # fmt: skip


@dataclass(frozen=True)
class Label:
    name: str
    variant: str = ""
    set_code: str = ""


def _capitalise(word: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))


def title_case(text: str) -> str:
    words = text.split()
    uniform = text.islower() or text.isupper()
    out: list[str] = []
    for index, word in enumerate(words):
        if index > 0 and word.lower() in _MINOR_WORDS and (uniform or word.islower()):
            out.append(word.lower())
        elif uniform or word.islower():
            out.append(_capitalise(word))
        else:
            out.append(word)  # "DVD", "iPhone", "McCoy" in a mixed-case name
    return " ".join(out)


def label_from_stem(stem: str) -> Label:
    """The label a file (without its extension) or a folder name stands for."""
    text = stem.strip()
    set_code = ""
    match = _SET_CODE.match(text)
    if match:
        set_code = match.group("code").upper()
        text = text[match.end() :]
    words = [w for w in re.split(r"[_\s]+", text) if w]
    variant = ""
    if len(words) > 1 and words[-1].lower() in RARITIES:
        variant = RARITIES[words.pop().lower()]
    name = title_case(" ".join(words)) if words else set_code
    return Label(name=name, variant=variant, set_code=set_code)
