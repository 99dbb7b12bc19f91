"""Content-aware Iceberg merge: live-file diff (`diff.py`), conflict rules (`rules.py`),
the planner and its plan (`plan.py`), one-snapshot replay (`write.py`)."""
