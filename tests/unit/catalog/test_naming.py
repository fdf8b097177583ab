"""The file-name rules of the folder import, one row per rule and edge."""

import pytest

from photosearch_catalog.naming import Label, label_from_stem

CASES = [
    # the examples the rules come from
    ("LOCH-JP001_dark_magician", Label("Dark Magician", "", "LOCH-JP001")),
    ("dark_magician_pscr", Label("Dark Magician", "PScR")),
    ("LOCH-JP001_dark_magician_pscr", Label("Dark Magician", "PScR", "LOCH-JP001")),
    # every rarity suffix, any case
    ("x_scr", Label("X", "ScR")),
    ("x_UR", Label("X", "UR")),
    ("x_sr", Label("X", "SR")),
    ("x_op", Label("X", "OP")),
    ("x_utr", Label("X", "UtR")),
    ("x_cr", Label("X", "CR")),
    ("x_Ea", Label("X", "EA")),
    ("x_gmr", Label("X", "GMR")),
    # a rarity word alone is a name, not a variant; only the last word counts
    ("sr", Label("Sr")),
    ("ur_dragon", Label("Ur Dragon")),
    # set codes: region optional, a letter suffix allowed, case kept upper
    ("LOB-005_blue-eyes_white_dragon", Label("Blue-Eyes White Dragon", "", "LOB-005")),
    ("mp19-en123_ash_blossom_ur", Label("Ash Blossom", "UR", "MP19-EN123")),
    ("SDY-006a_summoned_skull", Label("Summoned Skull", "", "SDY-006A")),
    ("LOCH-JP001", Label("LOCH-JP001", "", "LOCH-JP001")),
    # not set codes
    ("R2-D2_astromech", Label("R2-D2 Astromech")),
    ("obj001__0", Label("Obj001 0")),
    # underscores, spaces, title case
    ("  dark__magician   girl ", Label("Dark Magician Girl")),
    ("dark_magician_of_chaos", Label("Dark Magician of Chaos")),
    ("the_winged_dragon_of_ra", Label("The Winged Dragon of Ra")),
    ("DARK_MAGICIAN", Label("Dark Magician")),
    ("harpie's_feather_duster", Label("Harpie's Feather Duster")),
    ("Star_Wars_DVD_box", Label("Star Wars DVD Box")),
    ("iPhone_case", Label("iPhone Case")),
]


@pytest.mark.parametrize(("stem", "expected"), CASES, ids=[c[0].strip() for c in CASES])
def test_label_from_file_name(stem: str, expected: Label) -> None:
    assert label_from_stem(stem) == expected
