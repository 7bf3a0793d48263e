"""reports/benchmark.html: the markdown report as one self-contained page. The same text is
parsed (markdown-it, CommonMark with tables; raw HTML in the text is escaped, not passed), its
headings get the anchors the markdown's links use (rnnbench/report/summary.py: slug), and every
figure is embedded as a data URI, so the page needs no other file and no network."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from markdown_it import MarkdownIt

from rnnbench.config import UserError
from rnnbench.io import FILE_MARKER
from rnnbench.report.summary import slug

FIGURES = "figures/"  # how the markdown links a figure: relative to the report

STYLE = """
body { font-family: system-ui, "Noto Sans", "Noto Sans CJK KR", sans-serif; line-height: 1.45;
       max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { background: #f5f5f5; padding: 0 0.2rem; }
pre { background: #f5f5f5; padding: 0.6rem; overflow-x: auto; }
img { max-width: 100%; height: auto; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.2rem; }
"""


class ReportError(UserError):
    """The report links a figure it cannot embed."""


def _data_uri(src: str, figures_dir: Path) -> str:
    if not src.startswith(FIGURES):
        raise ReportError(f"report: image {src!r} is not a report figure ({FIGURES}...); "
                          "the page would need another file")
    path = Path(figures_dir) / src.removeprefix(FIGURES)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ReportError(f"report: figure {src!r} cannot be read ({path}: {e.strerror})") \
            from None
    kind = {".png": "image/png", ".svg": "image/svg+xml"}.get(path.suffix, "image/png")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def to_html(markdown: str, figures_dir: Path, title: str) -> str:
    """The page for `markdown` (the report's text), its figures read from figures_dir."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    lines = markdown.splitlines()
    if lines and FILE_MARKER in lines[0]:  # the markdown's marker comment: the page has its own
        lines = lines[1:]
    tokens = md.parse("\n".join(lines))
    seen: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            base = slug(tokens[i + 1].content)
            n = seen.get(base, 0)
            seen[base] = n + 1
            tok.attrSet("id", base if n == 0 else f"{base}-{n}")
        for child in tok.children or []:
            if child.type == "image":
                child.attrSet("src", _data_uri(str(child.attrGet("src")), figures_dir))
    body = md.renderer.render(tokens, md.options, {})
    # the marker on the first line (io.check_output_file), after the doctype (standards mode)
    return (f"<!DOCTYPE html><!-- {FILE_MARKER} report: edits here are lost -->\n"
            f'<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")
