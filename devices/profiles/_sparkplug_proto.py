"""The Sparkplug B ``Payload`` protobuf message, built at import time without generated code.

The message layout is the Eclipse Sparkplug B 3.0 ``sparkplug_b.proto`` (package
``org.eclipse.tahu.protobuf``, proto2). Only the fields the gateway reads are declared: the
payload's ``timestamp``, ``metrics``, ``seq``, ``uuid``, ``body`` and each metric's name,
alias, timestamp, datatype, flags and scalar values. Everything else (metadata, property sets,
data sets, templates, extensions) is kept by protobuf as unknown fields, which are skipped
whole rather than parsed, so a hostile nested template costs no recursion.

The classes are built in a private descriptor pool so they can never clash with another
library's copy of the same proto.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["DATATYPES", "Payload"]

DATATYPES: dict[int, str] = {
    0: "Unknown", 1: "Int8", 2: "Int16", 3: "Int32", 4: "Int64", 5: "UInt8", 6: "UInt16",
    7: "UInt32", 8: "UInt64", 9: "Float", 10: "Double", 11: "Boolean", 12: "String",
    13: "DateTime", 14: "Text", 15: "UUID", 16: "DataSet", 17: "Bytes", 18: "File",
    19: "Template", 20: "PropertySet", 21: "PropertySetList",
}
"""Sparkplug B data type numbers (the ``datatype`` field of a metric)."""

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL = _F.LABEL_OPTIONAL
_REPEATED = _F.LABEL_REPEATED

# (name, number, type, label, oneof index or None)
_METRIC_FIELDS = [
    ("name", 1, _F.TYPE_STRING, _OPTIONAL, None),
    ("alias", 2, _F.TYPE_UINT64, _OPTIONAL, None),
    ("timestamp", 3, _F.TYPE_UINT64, _OPTIONAL, None),
    ("datatype", 4, _F.TYPE_UINT32, _OPTIONAL, None),
    ("is_historical", 5, _F.TYPE_BOOL, _OPTIONAL, None),
    ("is_transient", 6, _F.TYPE_BOOL, _OPTIONAL, None),
    ("is_null", 7, _F.TYPE_BOOL, _OPTIONAL, None),
    ("int_value", 10, _F.TYPE_UINT32, _OPTIONAL, 0),
    ("long_value", 11, _F.TYPE_UINT64, _OPTIONAL, 0),
    ("float_value", 12, _F.TYPE_FLOAT, _OPTIONAL, 0),
    ("double_value", 13, _F.TYPE_DOUBLE, _OPTIONAL, 0),
    ("boolean_value", 14, _F.TYPE_BOOL, _OPTIONAL, 0),
    ("string_value", 15, _F.TYPE_STRING, _OPTIONAL, 0),
    ("bytes_value", 16, _F.TYPE_BYTES, _OPTIONAL, 0),
]
_PAYLOAD_FIELDS = [
    ("timestamp", 1, _F.TYPE_UINT64, _OPTIONAL, None),
    ("seq", 3, _F.TYPE_UINT64, _OPTIONAL, None),
    ("uuid", 4, _F.TYPE_STRING, _OPTIONAL, None),
    ("body", 5, _F.TYPE_BYTES, _OPTIONAL, None),
]
_PACKAGE = "org.eclipse.tahu.protobuf"


def _build() -> Any:
    file = descriptor_pb2.FileDescriptorProto(
        name="edge_gateway/sparkplug_b.proto", package=_PACKAGE, syntax="proto2"
    )
    payload = file.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind, label, oneof in _METRIC_FIELDS:
        field = metric.field.add(name=name, number=number, type=kind, label=label)
        if oneof is not None:
            field.oneof_index = oneof
    for name, number, kind, label, _ in _PAYLOAD_FIELDS:
        payload.field.add(name=name, number=number, type=kind, label=label)
    payload.field.add(
        name="metrics",
        number=2,
        type=_F.TYPE_MESSAGE,
        label=_REPEATED,
        type_name=f".{_PACKAGE}.Payload.Metric",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Payload"))


Payload: Any = _build()
"""The Sparkplug B ``Payload`` message class (``Payload()``, ``FromString(bytes)``)."""
