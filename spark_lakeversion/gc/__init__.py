"""`lakeversion gc`, format-neutral: the run (`collect.py`), what the store retains
(`history.py`), what each format says its states reach (`reach.py`), who owns which
directory (`ownership.py`), file listing and deletion (`files.py`), durations
(`durations.py`), the report (`report.py`) and the commit-side epoch check (`fence.py`).
"""

from spark_lakeversion.gc.collect import collect_garbage, compute_reachability
from spark_lakeversion.gc.report import GcReport

__all__ = ["GcReport", "collect_garbage", "compute_reachability"]
