"""Reports that travel: one self-contained HTML file (interactive plotly figures with plotly.js inlined once, images
as ``data:`` URIs, settings and model provenance) that opens in a browser from disk, with no server.

:class:`HtmlReport` builds one (the dashboards' Save bar uses it); :func:`run_report` builds the report of a batch
run (``python -m workbench report RUN_DIR``). Headless: nothing here imports Jupyter or plotly.
"""

from workbench.report.html import HtmlReport, encode_png, model_provenance, plotly_js, png_data_uri, weights_record
from workbench.report.run import RUN_SECTIONS, BatchRun, default_report_path, load_run, run_report, scorecard
from workbench.report.strategies import section_strategies  # appends the strategies section to RUN_SECTIONS

__all__ = ["RUN_SECTIONS", "BatchRun", "HtmlReport", "default_report_path", "encode_png", "load_run",
           "model_provenance", "plotly_js", "png_data_uri", "run_report", "scorecard", "section_strategies",
           "weights_record"]
