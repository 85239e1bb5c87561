"""The page's ES modules: every name one imports from another is exported there.

A browser refuses the whole page when one import names something its module does not
export; this finds it without starting one.
"""

from __future__ import annotations

import re

from app.core.runtime import PROJECT_ROOT

JS = PROJECT_ROOT / "app" / "web" / "static" / "js"
NAME = r"[\w$]+"
DECLARED = re.compile(rf"export\s+(?:async\s+)?(?:function\s*\*?|const|let|class)\s*({NAME})")
LISTED = re.compile(r"export\s*\{([^}]*)\}")
IMPORTED = re.compile(r"import\s*\{([^}]*)\}\s*from\s*\"\./([\w-]+\.js)\"", re.S)


def _exports(source: str) -> set[str]:
    names = set(DECLARED.findall(source))
    for listed in LISTED.findall(source):
        names.update(part.split(" as ")[-1].strip() for part in listed.split(",") if part.strip())
    return names


def test_every_imported_name_is_exported() -> None:
    modules = {path.name: path.read_text(encoding="utf-8") for path in JS.glob("*.js")}
    exports = {name: _exports(source) for name, source in modules.items()}
    missing = [
        f"{name} imports {wanted!r} from {target}"
        for name, source in sorted(modules.items())
        for listed, target in IMPORTED.findall(source)
        for wanted in (part.split(" as ")[0].strip() for part in listed.split(","))
        if wanted and (target not in exports or wanted not in exports[target])
    ]
    assert missing == []


def test_the_check_sees_the_exports() -> None:
    # The patterns above find the page's exports at all (a check that saw none would pass
    # by finding nothing to compare).
    exports = _exports((JS / "dom.js").read_text(encoding="utf-8"))
    assert {"$", "h"} <= exports
    assert "readEvents" in _exports((JS / "sse.js").read_text(encoding="utf-8"))
