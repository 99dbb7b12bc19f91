"""`CheckPolicy`: what the server's operator lets checks reach, fixed when the server is
built (`lakeversion serve --check-module NAME --webhook-allow HOST[:PORT]`,
`create_app(check_modules=..., webhook_allow=...)`).

Adding a check is an admin operation on one branch, and an admin of `team-*` is not the
operator: a check may call only Python the operator installed (the entry-point group
``spark_lakeversion.checks`` and the modules named here, with their submodules), and a
webhook may post only to a public address or to a host listed here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spark_lakeversion.errors import InvalidInput

ENV_CHECK_MODULES = "LAKEVERSION_CHECK_MODULES"
ENV_WEBHOOK_ALLOW = "LAKEVERSION_WEBHOOK_ALLOW"
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_HOST_GLOB = re.compile(r"[A-Za-z0-9.*?\[\]:_-]+")


@dataclass(frozen=True)
class CheckPolicy:
    """`check_modules`: modules whose functions Python checks may name; `webhook_allow`:
    host globs (`HOST` or `HOST:PORT`, `fnmatch` syntax, case-insensitive) webhooks may
    reach even on loopback, link-local or private addresses."""

    check_modules: tuple[str, ...] = ()
    webhook_allow: tuple[str, ...] = ()

    @classmethod
    def of(cls, check_modules: Iterable[str] | None = None,
           webhook_allow: Iterable[str] | None = None) -> CheckPolicy:
        """The policy, or `InvalidInput` naming the bad module name or host glob."""
        modules = tuple(check_modules or ())
        hosts = tuple(webhook_allow or ())
        for name in modules:
            if not isinstance(name, str) or not _MODULE.fullmatch(name):
                raise InvalidInput(f"check module {name!r} is not a dotted module name")
        for glob in hosts:
            if not isinstance(glob, str) or not _HOST_GLOB.fullmatch(glob):
                raise InvalidInput(f"webhook host {glob!r}: give HOST or HOST:PORT "
                                   "(globs allowed, no scheme or path)")
        return cls(modules, tuple(h.lower() for h in hosts))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CheckPolicy:
        """`LAKEVERSION_CHECK_MODULES` and `LAKEVERSION_WEBHOOK_ALLOW` (names separated by
        spaces or commas): the policy of a store opened in this process, and the default
        of `lakeversion serve --check-module/--webhook-allow`."""
        env = os.environ if environ is None else environ
        return cls.of(_words(env.get(ENV_CHECK_MODULES, "")),
                      _words(env.get(ENV_WEBHOOK_ALLOW, "")))

    def allows_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.check_modules)


#: the narrowest policy: installed entry points only, webhooks to public addresses only
DEFAULT_CHECK_POLICY = CheckPolicy()


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text) if w]
