"""Write ``.dvc/plots/offline.html``: DVC's plot page template with Vega, Vega-Lite and vega-embed inlined.

Why: DVC's own page loads these three scripts from a CDN, so ``dvc plots show`` / ``dvc plots diff``
render a blank page on a machine without internet (most GPU clusters) and in a browser opened later
offline. ``.dvc/config`` points ``plots.html_template`` at the page this writes, which carries the
scripts inline: the HTML DVC writes is self-contained. The scripts come from the npm registry (the
projects' own builds, ``npm pack`` checks their integrity) at pinned versions; all three are
BSD-3-Clause (the notices are kept at the top of the page). Run it only to change versions
(``python scripts/vendor_vega.py``, needs ``npm``); the page is committed, so nothing downloads it
at setup or run time.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSIONS = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}  # majors DVC's specs use
OUT = Path(__file__).resolve().parents[1] / ".dvc" / "plots" / "offline.html"
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # what DVC replaces in the template

# vega-embed draws on a canvas by default; SVG puts every curve in the page's DOM (crisp when zoomed,
# searchable, and what the browser test reads back). DVC calls vegaEmbed(el, spec) for each plot.
SVG_DEFAULT = """(function () {
  var embed = window.vegaEmbed;
  window.vegaEmbed = function (el, spec, opt) {
    return embed(el, spec, Object.assign({renderer: "svg"}, opt || {}));
  };
})();"""

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot (offline)</title>
<!--
Written by scripts/vendor_vega.py: {versions}, inlined so that this page loads nothing from the
network. Their licenses (BSD-3-Clause):

{licenses}
-->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def _unpack(name: str, version: str, work: Path) -> tuple[str, str]:
    """``(minified bundle, license text)`` of ``name@version`` from the npm registry."""
    tgz = subprocess.run(
        ["npm", "pack", "--silent", f"{name}@{version}"], cwd=work, check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    with tarfile.open(work / tgz) as tar:
        script = tar.extractfile(f"package/build/{name}.min.js").read().decode()  # type: ignore[union-attr]
        try:
            license_text = tar.extractfile("package/LICENSE").read().decode()  # type: ignore[union-attr]
        except KeyError:  # vega's npm package ships none; its package.json says BSD-3-Clause
            license_text = (
                "BSD-3-Clause (its package.json; the npm package ships no LICENSE file), Copyright (c) "
                "University of Washington Interactive Data Lab: the terms of vega-lite's text below."
            )
    script = script.replace(f"//# sourceMappingURL={name}.min.js.map", "")  # no .map file beside the page
    for bad in ("</script", *PLACEHOLDERS):
        if bad in script:
            raise SystemExit(f"{name}@{version} contains {bad!r}: it cannot be inlined as is")
    return script, license_text


def main() -> int:
    scripts, licenses = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, version in VERSIONS.items():
            script, license_text = _unpack(name, version, Path(tmp))
            scripts.append(f"<script>/* {name}@{version} */\n{script}\n</script>")
            text = license_text.strip().replace("--", "- -")
            for earlier in licenses:  # the same BSD terms under another copyright line: say them once
                head, _, terms = text.partition("\n")
                if terms and terms in earlier:
                    text = f"{head}\n(the terms above)"
            licenses.append(f"{name}@{version}:\n{text}")
    scripts.append(f"<script>\n{SVG_DEFAULT}\n</script>")
    versions = ", ".join(f"{n} {v}" for n, v in VERSIONS.items())
    page = PAGE.format(versions=versions, licenses="\n\n".join(licenses), scripts="\n".join(scripts))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(page, encoding="utf-8")
    print(f"wrote {OUT} ({len(page.encode()) // 1024} KiB: {versions})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
