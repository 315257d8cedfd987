#!/usr/bin/env python3
"""Writes the record_decode seeds: valid records in the format of src/record.rs (12-byte header,
postcard EventMeta, body; CRC-32 over bytes 0..8, metadata and body). Run from fuzz/."""
import struct
import zlib


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def s(x):
    x = x.encode()
    return varint(len(x)) + x


def rec(id, ts, ct, et, body):
    meta = s(id) + varint(ts) + s(ct) + (b"\x00" if et is None else b"\x01" + s(et))
    hdr = bytes([1, 0]) + struct.pack("<HI", len(meta), len(body))
    crc = zlib.crc32(hdr + meta + body) & 0xFFFFFFFF
    return hdr + struct.pack("<I", crc) + meta + body


seeds = {
    "valid_json": rec("evt_01JD0000000000000000000000", 1795240146123, "application/json",
                      "message.received", b'{"sender_id":"user_42","text":"Hello!"}'),
    "valid_binary": rec("evt_01JD0000000000000000000001", 0, "application/octet-stream", None,
                        bytes([0, 255, 10, 13])),
    "valid_empty": rec("", 0, "", None, b""),
}
for name, data in seeds.items():
    with open(f"seeds/record_decode/{name}", "wb") as f:
        f.write(data)
