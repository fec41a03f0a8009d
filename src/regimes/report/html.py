"""Small HTML building blocks for self-contained reports: escaping, tables, embedded figures, page.

Everything is inline (CSS, PNGs as base64 data URIs, one tiny check script) and a Content
Security Policy forbids any network request, so a report opens anywhere, offline, unchanged.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from string import Template

VERDICT_ID = "verdict"

CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d1d1f; margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 12px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.verdict { border-radius: 6px; padding: 12px 16px; margin: 8px 0 16px; color: #fff; }
.verdict.ok { background: #2e7d4f; }
.verdict.bad { background: #b03a2e; }
.verdict strong { font-size: 19px; text-transform: uppercase; letter-spacing: .03em; }
.verdict ul { margin: 6px 0 0 18px; padding: 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13.5px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px; text-align: left;
         vertical-align: top; }
th { background: #f4f4f6; }
table.kv th { background: none; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td { background: #fbeaea; }
tr.agree td { background: #eaf6ee; }
tr.differ td { background: #fbeaea; }
tr.unsure td { background: #fdf6e3; }
tr.na td { color: #666; }
p.warn { background: #fdf6e3; padding: 6px 10px; border-radius: 4px; }
pre { background: #f7f7f9; border: 1px solid #e3e3e3; padding: 10px; font-size: 12.5px;
      overflow-x: auto; max-height: 420px; }
figure { margin: 12px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13.5px; color: #444; margin-top: 4px; }
.note { color: #555; font-size: 13.5px; }
.columns { display: grid; gap: 16px; }
.columns > div { min-width: 0; }
"""

# Sets data-* attributes on <body> once the page has loaded, so a headless browser can check that
# every image decoded and that the verdict banner is visible in the first viewport.
CHECK_SCRIPT = Template(
    """
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].naturalWidth > 0) { ok++; } }
  var v = document.getElementById("$verdict_id"), r = v ? v.getBoundingClientRect() : null;
  var seen = !!r && r.width > 0 && r.height > 0 && r.top >= 0 && r.top < window.innerHeight;
  document.body.setAttribute("data-img-count", String(imgs.length));
  document.body.setAttribute("data-img-loaded", String(ok));
  document.body.setAttribute("data-verdict-visible", seen ? "yes" : "no");
});
"""
).substitute(verdict_id=VERDICT_ID)

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'"
)

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
<script>$script</script>
</head>
<body>
<h1>$title</h1>
$body
</body>
</html>
""")


def page(title: str, sections: Iterable[str]) -> str:
    """A complete, self-contained HTML document from already-rendered section fragments."""
    return PAGE.substitute(
        title=escape(title),
        csp=CSP,
        css=CSS,
        script=CHECK_SCRIPT,
        body="\n".join(s for s in sections if s),
    )


def section(title: str, *parts: str, id_: str = "") -> str:
    """A titled <section> holding rendered fragments."""
    ident = f' id="{escape(id_)}"' if id_ else ""
    return (
        f"<section{ident}>\n<h2>{escape(title)}</h2>\n"
        + "\n".join(p for p in parts if p)
        + "\n</section>"
    )


def para(text: str, cls: str = "") -> str:
    """A paragraph of plain (escaped) text."""
    klass = f' class="{cls}"' if cls else ""
    return f"<p{klass}>{escape(text)}</p>"


def pre(text: str) -> str:
    """Preformatted, escaped text (config files, plain-text tables)."""
    return f"<pre>{escape(text)}</pre>"


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table of escaped strings; columns in `numeric` are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and row_classes[i] else ""
        cells = "".join(
            f'<td class="num">{escape(c)}</td>' if j in numeric else f"<td>{escape(c)}</td>"
            for j, c in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def kv_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (name, value) pairs with the names as row headers."""
    body = "\n".join(
        f'<tr><th scope="row">{escape(k)}</th><td>{escape(v)}</td></tr>' for k, v in rows
    )
    return f'<table class="kv">\n<tbody>\n{body}\n</tbody>\n</table>'


def data_uri(png: Path) -> str:
    """A PNG file as a base64 data URI, so the page carries its own images."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def figure(png: Path, caption: str) -> str:
    """An embedded PNG figure with its caption (the alt text is the caption too)."""
    return (
        f'<figure data-stem="{escape(png.stem)}">\n'
        f'<img src="{data_uri(png)}" alt="{escape(caption)}">\n'
        f"<figcaption>{escape(caption)}</figcaption>\n</figure>"
    )


def verdict_banner(converged: bool, reasons: Sequence[str], detail: str = "") -> str:
    """The coloured convergence banner: green 'converged' or red 'not converged' with reasons."""
    word, cls = ("converged", "ok") if converged else ("not converged", "bad")
    items = "".join(f"<li>{escape(r)}</li>" for r in reasons)
    extra = f" <span>{escape(detail)}</span>" if detail else ""
    listing = f"<ul>{items}</ul>" if items else ""
    return (
        f'<div id="{VERDICT_ID}" class="verdict {cls}" data-verdict="{escape(word)}">'
        f"<strong>{escape(word)}</strong>{extra}{listing}</div>"
    )


def columns(cells: Sequence[str]) -> str:
    """Side-by-side columns (one per run) of rendered fragments."""
    n = max(len(cells), 1)
    inner = "\n".join(f"<div>{c}</div>" for c in cells)
    return f'<div class="columns" style="grid-template-columns: repeat({n}, 1fr)">\n{inner}\n</div>'
