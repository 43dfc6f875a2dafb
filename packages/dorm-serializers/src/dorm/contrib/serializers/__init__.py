"""Constant-memory MessagePack streams and JSON Schema / OpenAPI / Avro schemas of dorm models.

Usage::

    from dorm.contrib.serializers import (
        avro_schema_for, iter_msgpack, json_schema_for, openapi_schema_for, stream_msgpack,
    )

    # A QuerySet streams through a server-side cursor on PostgreSQL, chunk by chunk.
    with open("articles.msgpack", "wb") as out:
        for chunk in stream_msgpack(Article.objects.all()):
            out.write(chunk)

    with open("articles.msgpack", "rb") as stream:
        copies = list(iter_msgpack(stream, Article))   # unsaved Article instances

    components = {"schemas": {"Article": openapi_schema_for(Article)}}
    avro = avro_schema_for(Article)

Plugin field classes map through the ``dorm_register_value_schemas`` hook; an unmapped
field class raises UnknownFieldTypeError naming the field and that hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.serializers.exceptions import (
        RecordError,
        SerializerError,
        StreamFormatError,
        UnknownFieldTypeError,
    )
    from dorm.contrib.serializers.jsonl import (
        iter_jsonl,
        stream_jsonl,
    )
    from dorm.contrib.serializers.schemas import (
        avro_record,
        avro_schema_for,
        json_schema_for,
        openapi_schema_for,
    )
    from dorm.contrib.serializers.streams import (
        astream_msgpack,
        iter_msgpack,
        stream_msgpack,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RecordError": "dorm.contrib.serializers.exceptions",
        "SerializerError": "dorm.contrib.serializers.exceptions",
        "StreamFormatError": "dorm.contrib.serializers.exceptions",
        "UnknownFieldTypeError": "dorm.contrib.serializers.exceptions",
        "iter_jsonl": "dorm.contrib.serializers.jsonl",
        "stream_jsonl": "dorm.contrib.serializers.jsonl",
        "avro_record": "dorm.contrib.serializers.schemas",
        "avro_schema_for": "dorm.contrib.serializers.schemas",
        "json_schema_for": "dorm.contrib.serializers.schemas",
        "openapi_schema_for": "dorm.contrib.serializers.schemas",
        "astream_msgpack": "dorm.contrib.serializers.streams",
        "iter_msgpack": "dorm.contrib.serializers.streams",
        "stream_msgpack": "dorm.contrib.serializers.streams",
    },
)


__version__ = "1.0.0"

__all__ = [
    "RecordError",
    "SerializerError",
    "StreamFormatError",
    "UnknownFieldTypeError",
    "__version__",
    "astream_msgpack",
    "avro_record",
    "avro_schema_for",
    "iter_jsonl",
    "iter_msgpack",
    "json_schema_for",
    "openapi_schema_for",
    "stream_jsonl",
    "stream_msgpack",
]
