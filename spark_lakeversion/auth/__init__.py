"""Who may do what, branch by branch: principals, their grants and their tokens.

`config.py` loads principals from a TOML file (`lakeversion serve --auth-config FILE`),
`grants.py` decides one permission on one ref, `tokens.py` makes and checks tokens. The
rule is enforced once, in `spark_lakeversion.versioning.access`, which every surface of
the server goes through.
"""

from spark_lakeversion.auth.config import AuthConfig, load_auth_config
from spark_lakeversion.auth.grants import ANONYMOUS, Grant, Permission, Principal
from spark_lakeversion.auth.tokens import check_token, new_token, token_sha256

__all__ = ["ANONYMOUS", "AuthConfig", "Grant", "Permission", "Principal", "check_token",
           "load_auth_config", "new_token", "token_sha256"]
