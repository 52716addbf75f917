"""Pure report rendering (Markdown tables, terminal table, matplotlib figure) from stage outputs.

No Prefect here: the flows publish these strings as artifacts, the CLI prints them.
"""

from faerec.report.dataset import (
    POPULARITY_GROUPS,
    dataset_stats_markdown,
    head_tail_markdown,
    head_tail_summary,
)
from faerec.report.embedding import embedding_summary_markdown
from faerec.report.metrics import (
    coverage_table_markdown,
    group_labels,
    groups_table_markdown,
    metrics_table_markdown,
    run_facts_markdown,
)
from faerec.report.plots import group_analysis_png
from faerec.report.terminal import metrics_table_text
from faerec.report.training import read_history, training_curve_markdown

__all__ = [
    "POPULARITY_GROUPS",
    "coverage_table_markdown",
    "dataset_stats_markdown",
    "embedding_summary_markdown",
    "group_analysis_png",
    "group_labels",
    "groups_table_markdown",
    "head_tail_markdown",
    "head_tail_summary",
    "metrics_table_markdown",
    "metrics_table_text",
    "read_history",
    "run_facts_markdown",
    "training_curve_markdown",
]
