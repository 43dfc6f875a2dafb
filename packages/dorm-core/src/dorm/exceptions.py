"""Exception classes shared by dorm-core and every plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "CommandError",
    "DataError",
    "DatabaseError",
    "DormError",
    "EmptyResultSet",
    "FieldDoesNotExist",
    "FieldError",
    "ImproperlyConfigured",
    "IntegrityError",
    "InterfaceError",
    "MultipleObjectsReturned",
    "NotSupportedError",
    "ObjectDoesNotExist",
    "OperationalError",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
    "ProgrammingError",
    "ProtectedError",
    "RestrictedError",
    "SynchronousOnlyOperation",
    "TransactionManagementError",
    "ValidationError",
    "did_you_mean",
]


class DormError(Exception):
    """Base class of every exception dorm raises on its own account."""


class ImproperlyConfigured(DormError):
    """A setting is missing or has a value dorm cannot use."""


class PluginError(DormError):
    """Base class for problems with a plugin or a hook implementation."""


class PluginLoadError(PluginError):
    """A plugin named in the ``dorm`` entry-point group could not be loaded."""


class PluginConflictError(PluginError):
    """Two plugins (or a plugin and core) claim the same name or slot."""


class CommandError(DormError):
    """A ``dorm`` CLI command failed; the message is shown to the user as is."""


class SynchronousOnlyOperation(DormError):
    """A blocking database call was made from a running event loop (use its async twin,
    or ``asyncio.to_thread``; ``DORM_ALLOW_ASYNC_UNSAFE=1`` lets it through)."""


# --- model and query errors (the Django names) ---------------------------------------


class ObjectDoesNotExist(DormError):
    """A query that must return one object returned none (``Model.DoesNotExist``)."""


class MultipleObjectsReturned(DormError):
    """A query that must return one object returned several."""


class FieldDoesNotExist(DormError):
    """A model has no field of that name."""


class FieldError(DormError):
    """A field name, lookup or expression is not valid for the model it is used on."""


class EmptyResultSet(DormError):
    """Raised inside the compiler when a WHERE clause can match nothing."""


class ValidationError(DormError, ValueError):
    """One or more values failed validation; ``message_dict`` maps fields to messages."""

    def __init__(self, message: Any, code: str | None = None, params: Any = None) -> None:
        self.code = code
        self.params = params
        if isinstance(message, dict):
            self.message_dict: dict[str, list[str]] = {
                k: list(v) if isinstance(v, (list, tuple)) else [str(v)] for k, v in message.items()
            }
            # Field messages often name their field already ("price: ..."): say it once.
            self.messages = [
                m if m.startswith(f"{k}:") else f"{k}: {m}"
                for k, v in self.message_dict.items()
                for m in v
            ]
        elif isinstance(message, (list, tuple)):
            self.message_dict = {}
            self.messages = [str(m) for m in message]
        else:
            self.message_dict = {}
            self.messages = [str(message)]
        super().__init__("; ".join(self.messages))


# --- database errors: driver errors are translated into these (``raise ... from exc``) -------


class DatabaseError(DormError):
    """An error reported by the database or its driver.

    ``sqlstate`` is the server's SQLSTATE code (``"40001"``, ``"23505"``, ...) when the
    driver reports one, else None (SQLite reports none). It is kept even when the
    driver's exception is not chained because its text quoted a sensitive value.
    """

    sqlstate: str | None = None


class InterfaceError(DatabaseError):
    """The driver could not talk to the database (closed or unusable connection)."""


class DataError(DatabaseError):
    """A value does not fit its column (out of range, too long, bad format)."""


class OperationalError(DatabaseError):
    """The database failed to run the statement (connection lost, lock timeout, ...)."""


class IntegrityError(DatabaseError):
    """A constraint was violated (unique, foreign key, not null, check)."""


class ProgrammingError(DatabaseError):
    """The statement is wrong for this database (missing table, syntax error, ...)."""


class NotSupportedError(DatabaseError):
    """The database (vendor or version) does not support what was asked."""


class TransactionManagementError(ProgrammingError):
    """A transaction was used wrongly (nested durable block, query after an error, ...)."""


class ProtectedError(IntegrityError):
    """A delete would remove objects referenced through ``on_delete=PROTECT``."""

    def __init__(self, msg: str, protected_objects: Iterable[Any]) -> None:
        self.protected_objects = set(protected_objects)
        super().__init__(msg)


class RestrictedError(IntegrityError):
    """A delete would remove objects referenced through ``on_delete=RESTRICT``."""

    def __init__(self, msg: str, restricted_objects: Iterable[Any]) -> None:
        self.restricted_objects = set(restricted_objects)
        super().__init__(msg)


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the choice closest to ``name`` (difflib), or ``""``."""
    if not isinstance(name, str):
        return ""
    from difflib import get_close_matches  # imported on an error path only

    found = get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {found[0]!r}?" if found else ""
