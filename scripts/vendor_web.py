"""Refresh the page's third-party browser libraries from the npm registry.

The page runs without a build step: each library is kept under app/web/static/vendor/<lib>/
as an ES module, pinned to the version named in PINS below, with its licence beside it.
This script fetches each pinned package with `npm pack` (npm verifies the registry's
integrity hash), copies the files the page loads, and wraps the two small CommonJS plugins
as ES modules. It writes app/web/static/vendor/versions.json, which lists what is there.

    python scripts/vendor_web.py             # fetch the pinned versions again
    python scripts/vendor_web.py --latest    # move every pin to the registry's latest

After --latest, update PINS here to the versions printed, run the web tests and commit.

axe-core, which only the web tests load (to check the page's accessibility), goes to
tests/web/vendor/ instead: the page never serves it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "app" / "web" / "static" / "vendor"
TEST_VENDOR = ROOT / "tests" / "web" / "vendor"

PINS = {
    "markdown-it": "15.0.3",
    "markdown-it-texmath": "1.0.0",
    "markdown-it-task-lists": "2.1.1",
    "dompurify": "3.4.18",
    "@highlightjs/cdn-assets": "11.12.0",
    "katex": "0.19.1",
    "axe-core": "4.14.1",
}
# Packages for the tests only: kept under TEST_VENDOR, not served with the page.
TEST_ONLY = {"axe-core"}

# package -> (folder under vendor/, [(file in the package, file in the folder, how)]).
# how: "copy", or "cjs" to wrap a CommonJS file (module.exports = ...) as an ES module.
FILES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "markdown-it": (
        "markdown-it",
        [
            ("dist/browser/markdown-it.esm.min.mjs", "markdown-it.mjs", "copy"),
            ("LICENSE", "LICENSE", "copy"),
        ],
    ),
    "markdown-it-texmath": (
        "markdown-it-texmath",
        [("texmath.js", "texmath.mjs", "cjs"), ("license.txt", "LICENSE", "copy")],
    ),
    "markdown-it-task-lists": (
        "markdown-it-task-lists",
        [("index.js", "task-lists.mjs", "cjs"), ("LICENSE", "LICENSE", "copy")],
    ),
    "dompurify": (
        "dompurify",
        [("dist/purify.es.mjs", "purify.mjs", "copy"), ("LICENSE", "LICENSE", "copy")],
    ),
    "@highlightjs/cdn-assets": (
        "highlight.js",
        [
            ("es/highlight.min.js", "highlight.mjs", "copy"),
            ("styles/github.min.css", "github.css", "copy"),
            ("styles/github-dark.min.css", "github-dark.css", "copy"),
            ("LICENSE", "LICENSE", "copy"),
        ],
    ),
    "katex": (
        "katex",
        [
            ("dist/katex.mjs", "katex.mjs", "copy"),
            ("dist/katex.min.css", "katex.css", "copy"),
            ("dist/fonts/*.woff2", "fonts/", "copy"),
            ("LICENSE", "LICENSE", "copy"),
        ],
    ),
    "axe-core": (
        "axe-core",
        [("axe.min.js", "axe.min.js", "copy"), ("LICENSE", "LICENSE", "copy")],
    ),
}

CJS_WRAPPER = """// {name} {version} (CommonJS), wrapped as an ES module by scripts/vendor_web.py.
const module = {{ exports: {{}} }};
const exports = module.exports;
{source}
export default module.exports;
"""


def npm(*args: str, cwd: Path | None = None) -> str:
    exe = shutil.which("npm")
    if exe is None:
        raise SystemExit("npm is needed: apt-get install npm")
    # Our own fixed arguments: package names and versions from PINS above.
    done = subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, text=True)  # noqa: S603
    return done.stdout.strip()


def fetch(name: str, version: str, work: Path) -> Path:
    """The unpacked package folder of name@version."""
    tgz = npm("pack", "--silent", f"{name}@{version}", cwd=work).splitlines()[-1]
    unpacked = work / tgz.removesuffix(".tgz")
    with tarfile.open(work / tgz) as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked / "package"


def place(name: str, version: str, package: Path) -> None:
    folder, files = FILES[name]
    target = (TEST_VENDOR if name in TEST_ONLY else VENDOR) / folder
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for source, dest, how in files:
        if "*" in source:
            (target / dest).mkdir(parents=True, exist_ok=True)
            matches = sorted(package.glob(source))
            if not matches:
                raise SystemExit(f"{name}@{version}: nothing matches {source}")
            for match in matches:
                shutil.copyfile(match, target / dest / match.name)
            continue
        path = package / source
        if not path.is_file():
            raise SystemExit(f"{name}@{version}: no {source} in the package")
        if how == "cjs":
            text = CJS_WRAPPER.format(
                name=name, version=version, source=path.read_text(encoding="utf-8")
            )
            (target / dest).write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(path, target / dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latest", action="store_true", help="take the latest version of each package"
    )
    args = parser.parse_args()
    pins = dict(PINS)
    if args.latest:
        pins = {name: npm("view", name, "version") for name in PINS}
    with tempfile.TemporaryDirectory() as tmp:
        for name, version in pins.items():
            place(name, version, fetch(name, version, Path(tmp)))
            print(f"{name}@{version}")
    for root, test_only in ((VENDOR, False), (TEST_VENDOR, True)):
        listing = {
            n: {"version": v, "folder": FILES[n][0]}
            for n, v in pins.items()
            if (n in TEST_ONLY) == test_only
        }
        text = json.dumps(listing, indent=2) + "\n"
        (root / "versions.json").write_text(text, encoding="utf-8")
    if pins != PINS:
        print("Now set PINS in scripts/vendor_web.py to the versions above.", file=sys.stderr)


if __name__ == "__main__":
    main()
