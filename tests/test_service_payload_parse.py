"""Request bodies parsed by orjson where it reads what the standard parser reads, else by the
standard parser: the same bodies accepted and refused, with the same values and types."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest

from service.http.errors import BadRequest
from service.http.payload import parse


def _standard(raw: bytes) -> Any:
    """What the service read before: the standard parser, NaN and Infinity refused."""
    def refuse(name: str) -> Any:
        raise ValueError(name)
    return json.loads(raw.decode(json.detect_encoding(raw), "surrogatepass"),
                      parse_constant=refuse)


def _parse(raw: bytes) -> Any:
    encoding = json.detect_encoding(raw)
    return parse(raw, raw.decode(encoding, "surrogatepass"), encoding)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                      == math.copysign(1, b))
    return bool(a == b)


BODIES = [
    b'{"a": 1, "b": [1.5, -0.0, 0, true, false, null, "x"]}',
    b'{"a": 1, "a": 2}',
    b"12345678901234567890123", b"-9223372036854775809", b"18446744073709551616",
    b"18446744073709551615", b"-9223372036854775808", b'{"n": 1234567890123456789}',
    b'"1234567890123456789012"', b"1e400", b"-1e400", b"[1e-400]", b"1.7976931348623157e308",
    b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"nan", b"[1,]", b'{"a":1,}', b"",
    b"   ", b"[1] [2]", b'"\\ud800"', b'"\\udc00x"', b'"\\ud83d\\ude00"', b'"\xed\xa0\x80"',
    b"\xef\xbb\xbf{}", b'{"a": "\x01"}', b"[01]", b"[.5]", b"[1.]", b"[-]",
    b"[+1]", b"[0x10]", b'{"a" 1}', b"{'a': 1}", b"[1e5, 1E+5, 1e-5, 123.456e-7]",
    '{"ä": "ß", "€": ["日本"]}'.encode(), '{"a": 1}'.encode("utf-16"),
    '{"a": [1, 2.5]}'.encode("utf-16-le"), '{"a": 1}'.encode("utf-32"),
    b'\t\n\r {"a":\t[\n]\r}\n', b"[" * 40 + b"]" * 40, b'{"a": "\\u0000\\n\\t\\\\\\""}',
]


@pytest.mark.parametrize("raw", BODIES)
def test_orjson_and_the_standard_parser_accept_and_refuse_the_same_bodies(raw: bytes) -> None:
    try:
        expected = _standard(raw)
    except (ValueError, RecursionError):
        with pytest.raises(BadRequest):
            _parse(raw)
        return
    assert _same(_parse(raw), expected)


def test_random_numbers_read_alike() -> None:
    rng = random.Random(16)
    numbers = []
    for _ in range(3000):
        x = struct.unpack("d", rng.randbytes(8))[0]
        if math.isfinite(x):
            numbers.append(repr(x))
        numbers.append(str(rng.randrange(-10 ** rng.randrange(1, 30), 10 ** rng.randrange(1, 30))))
        numbers.append(f"{rng.randrange(10**9)}.{rng.randrange(10**12)}e{rng.randrange(-330, 310)}")
    for number in numbers:  # one a body: a long integer sends only its own to the fallback
        raw = f"[{number}]".encode()
        assert _same(_parse(raw), _standard(raw)), number
