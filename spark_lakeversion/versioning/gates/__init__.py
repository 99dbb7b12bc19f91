"""Merge gates: checks attached to a target branch run on the merge preview (the exact
state the merge would publish) and the publish is a compare-and-swap from the head the
merge was planned on, so the target never holds a state its checks did not see.

`context.py` is what a check is handed; `gate.py` the gated merge and the check settings;
the engines that run checks (SQL, Python, webhooks) live above this layer in
`spark_lakeversion.checks`, reached through `context.CheckRunner`.
"""

from spark_lakeversion.versioning.gates.context import CheckRunner, GateContext

__all__ = ["CheckRunner", "GateContext"]
