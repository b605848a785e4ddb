"""report.html: the report's blocks as one self-contained page, every figure inlined as a data URI."""

from __future__ import annotations

import base64
import html

from harness.present.results import Block, Results

CSS = ("body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;"
       "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3}"
       ".supported{color:#1a7f37}.refuted{color:#c62828}.partly{color:#b26a00}.inconclusive{color:#555}"
       ".not-tested{color:#888}.not-applicable{color:#888}")


def render_html(blocks: list[Block], figures: dict[str, bytes], title: str) -> str:
    """HTML with every image inlined (`figures`: image path → PNG bytes): the file stands alone."""
    out = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{html.escape(str(b.content))}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{html.escape(str(b.content))}</p>")
        elif b.kind == "pre":
            out.append(f"<pre>{html.escape(str(b.content))}</pre>")
        elif b.kind == "list":
            out.append("<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in b.content) + "</ul>")
        elif b.kind == "table":
            df = b.content
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
            body = []
            for row in df.itertuples(index=False):
                tds = []
                for c, v in zip(df.columns, row):
                    cls = f' class="{html.escape(str(v))}"' if c == "verdict" else ""
                    tds.append(f"<td{cls}>{html.escape(str(v))}</td>")
                body.append("<tr>" + "".join(tds) + "</tr>")
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        elif b.kind == "image":
            path, alt = b.content
            data = base64.b64encode(figures[path]).decode("ascii")
            out.append(f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>')
    out.append("</body></html>")
    return "\n".join(out)


class HtmlExporter:
    name = "html"
    file_name = "report.html"

    def render(self, results: Results) -> bytes:
        return render_html(results.blocks, results.figures, results.title).encode("utf-8")
