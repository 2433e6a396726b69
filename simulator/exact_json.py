"""JSON output for money without binary floating point: `Decimal` values are written as
plain JSON numbers straight from their decimal digits (never through `float`), or as
decimal strings where a format wants strings. Used by every invoice/statement writer and
the ground-truth manifest."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_encode_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def plain(d: Decimal) -> str:
    """A Decimal in positional notation ('0.000000100', never '1E-7'); -0 becomes 0."""
    s = format(d, "f")
    return s[1:] if s.startswith("-") and d == 0 else s


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """Serialize like `json.dumps`, but a `Decimal` becomes a JSON number written from its
    digits. Keys keep their insertion order (writers build them in a fixed order)."""
    out: list[str] = []
    _write(obj, out, indent, 0)
    return "".join(out)


def _write(obj: Any, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(obj, Decimal):
        out.append(plain(obj))
    elif isinstance(obj, str):
        out.append(_encode_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, float):
        raise TypeError("floats are not written by exact_json; use Decimal for money")
    elif isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        nl, pad, pad_end = _pads(indent, level)
        out.append("{")
        for i, (k, v) in enumerate(obj.items()):
            if i:
                out.append(",")
            out.append(nl + pad + _encode_str(str(k)) + ": ")
            _write(v, out, indent, level + 1)
        out.append(nl + pad_end + "}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        nl, pad, pad_end = _pads(indent, level)
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(",")
            out.append(nl + pad)
            _write(v, out, indent, level + 1)
        out.append(nl + pad_end + "]")
    else:
        raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def _pads(indent: int | None, level: int) -> tuple[str, str, str]:
    if indent is None:
        return "", "", ""
    return "\n", " " * (indent * (level + 1)), " " * (indent * level)


def loads_exact(text: str) -> Any:
    """Parse JSON with every number that has a fraction or exponent read as Decimal."""
    return json.loads(text, parse_float=Decimal)
