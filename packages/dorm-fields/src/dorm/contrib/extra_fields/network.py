"""``IPRangeField`` (CIDR networks) and its ``net_contains`` lookup on both vendors."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from dorm.contrib.extra_fields.base import ExtraField
from dorm.exceptions import NotSupportedError
from dorm.lookups import Lookup

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.sql.compiler import SQLCompiler

__all__ = ["SQLITE_NET_CONTAINS", "IPRangeField", "NetContains", "sqlite_net_contains"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The SQL function the plugin adds to every SQLite connection for ``net_contains``.
SQLITE_NET_CONTAINS = "extra_fields_net_contains"


class IPRangeField(ExtraField):
    """An IPv4 or IPv6 network in CIDR notation (``cidr`` on PostgreSQL, text on SQLite).

    Values are ``ipaddress.IPv4Network`` / ``IPv6Network``. Host bits must be zero
    (``10.0.0.0/24``, not ``10.0.0.1/24``), as PostgreSQL's ``cidr`` demands; a bare
    address is a one-address network (``/32`` or ``/128``).
    Filter with ``network__net_contains="10.0.0.7"``: rows whose network contains (or
    equals) the given address or network.
    """

    internal_type = "IPRangeField"
    passthrough = (None,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 43)  # the longest IPv6 CIDR text
        super().__init__(*args, **kwargs)

    def convert(self, value: Any) -> Network:
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            return value
        if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return ipaddress.ip_network(value)
        if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
            value = str(value)
        if not isinstance(value, str):
            raise self.error(value, "an IP network in CIDR notation such as '10.0.0.0/24'")
        try:
            return ipaddress.ip_network(value.strip(), strict=True)
        except ValueError as exc:
            raise self.error(
                value, f"an IP network in CIDR notation such as '10.0.0.0/24' ({exc})"
            ) from None

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 43:
            del kwargs["max_length"]
        return name, path, args, kwargs


def sqlite_net_contains(network: str | None, other: str | None) -> int | None:
    """SQLite function: 1 when ``other`` lies inside (or equals) ``network``, else 0."""
    if network is None or other is None:
        return None
    try:
        outer = ipaddress.ip_network(network)
        inner = ipaddress.ip_network(other)
    except ValueError:
        return 0
    if outer.version != inner.version:
        return 0
    return int(inner.subnet_of(outer))  # type: ignore[arg-type]


class NetContains(Lookup):
    """``network__net_contains=address_or_network``: PostgreSQL's ``>>=``."""

    lookup_name = "net_contains"

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[object]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} >>= CAST({rhs} AS inet)", [*lhs_params, *rhs_params]

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[object]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{SQLITE_NET_CONTAINS}({lhs}, {rhs}) = 1", [*lhs_params, *rhs_params]

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[object]]:
        raise NotSupportedError(
            f"net_contains is implemented for PostgreSQL and SQLite, not {connection.vendor}"
        )
