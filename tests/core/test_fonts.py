"""The fonts come from PyPI packages, each with its licence text installed beside it, and
in the TrueType outlines reportlab needs (docs/fonts.md)."""

from __future__ import annotations

from importlib.metadata import distribution

import pytest
from fontTools.ttLib import TTFont

from app.core.fonts import FONT_FILES, font_path

CJK = [name for name, (module, _, _) in FONT_FILES.items() if module == "justmytype_intl_cjk"]


@pytest.mark.parametrize("font", list(FONT_FILES))
def test_every_font_has_truetype_outlines(font: str) -> None:
    face = TTFont(str(font_path(font)), lazy=True, fontNumber=FONT_FILES[font][2])
    try:
        assert "glyf" in face, f"{font}: CFF outlines, which reportlab cannot embed"
    finally:
        face.close()


def test_the_licence_of_every_font_is_installed() -> None:
    noto = distribution("manimgx-fonts")
    assert noto.metadata["License-Expression"] == "OFL-1.1"
    licence = next(f for f in noto.files or [] if f.name == "LICENSE")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence.read_text()
    assert CJK
    for font in CJK:
        ofl = font_path(font).parent / "OFL.txt"
        assert "SIL Open Font License, Version 1.1" in ofl.read_text(), font
