"""report.md: the report's blocks as Markdown, figures linked by their path in the run directory."""

from __future__ import annotations

import pandas as pd

from harness.present.results import Block, Results


def _table(df: pd.DataFrame) -> str:
    cells = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in df.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(map(str, df.columns)) + " |",
                      "|" + "---|" * len(df.columns)] + ["| " + " | ".join(r) + " |" for r in cells])


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + str(b.content))
        elif b.kind == "p":
            out.append(str(b.content))
        elif b.kind == "list":
            out.append("\n".join(f"- {item}" for item in b.content))
        elif b.kind == "pre":
            fence = "~~~~" if "```" in str(b.content) else "```"
            out.append(f"{fence}\n{b.content}\n{fence}")
        elif b.kind in ("table", "verdicts"):
            out.append(_table(b.content))
        elif b.kind == "details":
            summary, verdict, text = b.content
            out.append(f"**{summary}: {verdict}.** {text}")
        elif b.kind == "image":
            path, alt = b.content
            out.append(f"![{alt}]({path})")
        out.append("")
    return "\n".join(out)


class MarkdownExporter:
    name = "markdown"
    file_name = "report.md"

    def render(self, results: Results) -> bytes:
        return render_markdown(results.blocks).encode("utf-8")
