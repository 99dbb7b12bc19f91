"""Errors of the Iceberg catalog in Iceberg's model: `type` is the exception name the Java
and Python Iceberg clients map onto their own exceptions, `status` the HTTP status the
server answers with. The wording is Iceberg's reference catalog's, the ref in a sentence of
its own."""

from __future__ import annotations


class IcebergError(Exception):
    """An error answered in Iceberg's model; `type` is the Iceberg exception name."""

    def __init__(self, status: int, type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message


class GcRefused(IcebergError):
    """A commit refused by gc's fence (409 CommitFailed): its files may be collected."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "CommitFailedException", message)


class StoreConflict(IcebergError):
    """The store refused the commit: a concurrent change touched the same table (409
    CommitFailed); a pure append may be rebased onto the new head and tried again."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "CommitFailedException", message)


def bad_request(message: str) -> IcebergError:
    return IcebergError(400, "BadRequestException", message)


def no_such_table(message: str) -> IcebergError:
    return IcebergError(404, "NoSuchTableException", message)


def no_such_namespace(message: str) -> IcebergError:
    return IcebergError(404, "NoSuchNamespaceException", message)


def already_exists(message: str) -> IcebergError:
    return IcebergError(409, "AlreadyExistsException", message)


def commit_failed(message: str) -> IcebergError:
    return IcebergError(409, "CommitFailedException", message)


# ---- Iceberg's reference wording (its JDBC catalog), our ref in a sentence of its own ------
def ref_sentence(ref: str) -> str:
    """Which ref the lookup was made at, as a sentence of its own after the reference text."""
    return f" Ref: {ref}."


def table_not_found(table: object, ref: str, hint: str = "") -> IcebergError:
    """`hint`: a "did you mean" (`versioning.suggest.table_hint`), after the ref."""
    return no_such_table(f"Table does not exist: {table}.{ref_sentence(ref)}{hint}")


def namespace_not_found(namespace: str, ref: str) -> IcebergError:
    return no_such_namespace(f"Namespace does not exist: {namespace}.{ref_sentence(ref)}")


def no_such_view(key: object, ref: str) -> IcebergError:
    return IcebergError(404, "NoSuchViewException",
                        f"View does not exist: {key}.{ref_sentence(ref)}")


def table_already_exists(table: object, ref: str) -> IcebergError:
    return already_exists(f"Table already exists: {table}.{ref_sentence(ref)}")


def namespace_already_exists(namespace: str, ref: str) -> IcebergError:
    return already_exists(f"Namespace already exists: {namespace}.{ref_sentence(ref)}")


def namespace_not_empty(namespace: str, ref: str, tables: int, namespaces: int) -> IcebergError:
    """A namespace with tables or namespaces under it is never dropped."""
    counts = [f"{n} {what}" for n, what in ((tables, "table(s)"), (namespaces, "namespace(s)"))
              if n]
    message = f"Namespace {namespace} is not empty. {' and '.join(counts)} exist."
    return IcebergError(409, "NamespaceNotEmptyException", message + ref_sentence(ref))
