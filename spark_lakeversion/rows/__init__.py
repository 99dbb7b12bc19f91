"""Row-level work, format-neutral: row identity, counting, and the three-way row rule
(`merge3.py`). The formats read rows; this package decides what they mean."""
