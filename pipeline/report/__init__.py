"""One self-contained HTML report of the latest pipeline run.

`data` reads the run into plain dataclasses; `charts` draws the SVG curves;
`page` renders the HTML. The page needs no network.
"""

from __future__ import annotations

import os

from pipeline.report.data import gather_report
from pipeline.report.page import render_html


def write_report(metadata_path: str, output_path: str) -> str:
    """Writes one self-contained HTML file for the latest pipeline run; returns output_path."""
    page = render_html(gather_report(metadata_path))
    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{output_path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(page)
    os.replace(temporary, output_path)
    return output_path
