"""report.html: the report's blocks as one self-contained page, every figure inlined as a data URI.

The page opens with a table of contents (every h2); verdicts are coloured by class, and each
verdict's evidence folds away under its summary line (<details>)."""

from __future__ import annotations

import base64
import html
import re

import pandas as pd

from harness.present.results import HOST_SEPARATOR, JUDGED_ON, Block, Results

# A verdict as the matrix shows it: not-applicable is long for a narrow column.
SHORT = {"not-applicable": "n/a"}
LEGEND = ("supported", "partly", "refuted", "inconclusive", "not-applicable", "not run")

CSS = ("body{font-family:sans-serif;max-width:1180px;margin:1em auto;padding:0 1em;line-height:1.4;color:#222}"
       "h1{font-size:1.5em;margin:.3em 0}h2{margin:1.4em 0 .4em;border-bottom:1px solid #ddd}"
       "table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;"
       "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3}"
       "nav.toc{font-size:.85em;line-height:1.6;margin:.3em 0 .6em}nav.toc a{margin-right:.2em}"
       "table.matrix{font-size:.82em}table.matrix td,table.matrix th{padding:.1em .4em}"
       "table.matrix td.v,table.matrix th.v{text-align:center;vertical-align:middle;white-space:nowrap;font-size:.85em;"
       "padding:.1em .2em}table.matrix th.v{white-space:normal}"
       "p.legend{font-size:.85em;margin:.2em 0}span.v{padding:0 .35em;border-radius:3px}"
       "details{margin:.3em 0}summary{cursor:pointer}details p{margin:.3em 0 .6em 1.2em}"
       ".supported{background:#d9f2df;color:#14632b}.refuted{background:#fadcdb;color:#9b1c1c}"
       ".partly{background:#fdecc0;color:#6e4600}.inconclusive{background:#e6e6ec;color:#444}"
       ".not-applicable{background:#f4f4f4;color:#888}.not-tested,.not-run{color:#999}")


def verdict_class(verdict: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", verdict.lower()).strip("-")


def _verdict(verdict: str, tag: str = "span") -> str:
    return f'<{tag} class="v {verdict_class(verdict)}">{html.escape(SHORT.get(verdict, verdict))}</{tag}>'


def _anchors(blocks: list[Block]) -> dict[int, str]:
    """An id for every h2: its anchor, else its text made a slug; unique in the page."""
    ids: dict[int, str] = {}
    taken: set[str] = set()
    for i, b in enumerate(blocks):
        if b.kind != "h2":
            continue
        base = b.anchor or re.sub(r"[^a-z0-9]+", "-", str(b.content).lower()).strip("-") or "section"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        ids[i] = name
    return ids


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        tds = []
        for c, v in zip(df.columns, row, strict=False):
            cls = f' class="{verdict_class(str(v))}"' if c == "verdict" else ""
            tds.append(f"<td{cls}>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _verdict_cell(value: str) -> str:
    """A matrix cell: one coloured verdict, or each host's where they differ ("v1: partly · v2: supported")."""
    if not value:
        return "<td></td>"
    if HOST_SEPARATOR not in value:
        return _verdict(value, "td")
    parts = (part.partition(": ") for part in value.split(HOST_SEPARATOR))
    return '<td class="v">' + "<br>".join(f"{html.escape(h)}: {_verdict(v)}" for h, _, v in parts) + "</td>"


def _matrix(df: pd.DataFrame, linked: set[str]) -> str:
    """Claim, sentence, the hosts that judged it (where more than one ran), then a coloured verdict per
    column; the claim links to its section."""
    claim, sentence, *columns = df.columns
    head = (f"<th>{html.escape(str(claim))}</th><th>{html.escape(str(sentence))}</th>"
            + "".join(f'<th class="v">{html.escape(str(c))}</th>' for c in columns))
    body = []
    for row in df.itertuples(index=False):
        cid, text, *values = (str(v) for v in row)
        name = f'<a href="#{html.escape(cid)}">{html.escape(cid)}</a>' if cid in linked else html.escape(cid)
        cells = "".join(f'<td class="v">{html.escape(v)}</td>' if column == JUDGED_ON else _verdict_cell(v)
                        for column, v in zip(columns, values, strict=True))
        body.append(f"<tr><td>{name}</td><td>{html.escape(text)}</td>{cells}</tr>")
    legend = '<p class="legend">' + " ".join(_verdict(v) for v in LEGEND) + " (n/a: not applicable)</p>"
    return f'{legend}<table class="matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def render_html(blocks: list[Block], figures: dict[str, bytes], title: str) -> str:
    """HTML with every image inlined (`figures`: image path → PNG bytes): the file stands alone."""
    ids = _anchors(blocks)
    toc = " · ".join(f'<a href="#{html.escape(name)}">{html.escape(blocks[i].anchor or str(blocks[i].content))}</a>'
                     for i, name in ids.items())
    out = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>"]
    for i, b in enumerate(blocks):
        if b.kind == "h1":
            out.append(f"<h1>{html.escape(str(b.content))}</h1>")
            if toc:
                out.append(f'<nav class="toc"><b>Contents:</b> {toc}</nav>')
        elif b.kind == "h2":
            out.append(f'<h2 id="{html.escape(ids[i])}">{html.escape(str(b.content))}</h2>')
        elif b.kind == "h3":
            out.append(f"<h3>{html.escape(str(b.content))}</h3>")
        elif b.kind == "p":
            out.append(f"<p>{html.escape(str(b.content))}</p>")
        elif b.kind == "pre":
            out.append(f"<pre>{html.escape(str(b.content))}</pre>")
        elif b.kind == "list":
            out.append("<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in b.content) + "</ul>")
        elif b.kind == "table":
            out.append(_table(b.content))
        elif b.kind == "verdicts":
            out.append(_matrix(b.content, {blocks[j].anchor for j in ids if blocks[j].anchor}))
        elif b.kind == "details":
            summary, verdict, text = b.content
            out.append(f"<details><summary>{html.escape(summary)}: {_verdict(verdict)}</summary>"
                       f"<p>{html.escape(text)}</p></details>")
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
