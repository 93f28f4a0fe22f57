#!/usr/bin/env python3
"""Writes the fuzz seed corpus for fuzz_device.c into the directory given
(mk/fuzz.mk passes build/fuzz/corpus): one well-formed request per message
type, as wire bytes (mode 0) and as raw items (mode 1/3, model preloaded).
Run: python3 fuzz/make_seeds.py OUT_DIR"""
import os, struct, sys, zlib

def cbor_head(major, v):
    if v < 24: return bytes([major << 5 | v])
    for info, fmt in ((24, '>B'), (25, '>H'), (26, '>I'), (27, '>Q')):
        if v < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, v)

def enc(x):
    if isinstance(x, bool): return b'\xf5' if x else b'\xf4'
    if isinstance(x, int): return cbor_head(0, x) if x >= 0 else cbor_head(1, -1 - x)
    if isinstance(x, bytes): return cbor_head(2, len(x)) + x
    if isinstance(x, str): return cbor_head(3, len(x.encode())) + x.encode()
    if isinstance(x, list): return cbor_head(4, len(x)) + b''.join(map(enc, x))
    if isinstance(x, dict): return cbor_head(5, len(x)) + b''.join(enc(k) + enc(v) for k, v in sorted(x.items()))

def cobs(b):
    out, blk = bytearray(), bytearray()
    for x in b:
        if x == 0:
            out += bytes([len(blk) + 1]) + blk; blk = bytearray()
        else:
            blk.append(x)
            if len(blk) == 254: out += b'\xff' + blk; blk = bytearray()
    return bytes(out + bytes([len(blk) + 1]) + blk)

def wire(t, seq, body):
    raw = bytes([1, t]) + struct.pack('<H', seq) + b'\0' + body
    return cobs(raw + struct.pack('<I', zlib.crc32(raw))) + b'\0'

sha = bytes(range(32))
sample = bytes(range(64))
msgs = [
    (0x01, {}), (0x02, {1: b'ping'}), (0x40, {}), (0x23, {}), (0x24, {1: 0, 2: 64}),
    (0x10, {1: 128, 2: sha}), (0x11, {1: 0, 2: bytes(64)}), (0x12, {1: sha}),
    (0x20, {1: 128, 2: sha}), (0x21, {1: 64, 2: bytes(64)}), (0x22, {1: sha}),
    (0x30, {1: 0, 2: 64, 3: bytes([1, 2]), 4: sample * 2}),
    (0x31, {1: 1, 2: 0, 3: 2, 4: 20000, 5: 100000, 6: 1000000, 7: 3, 8: 1, 9: 3}),
    (0x32, {1: 0, 2: 2}), (0x33, {1: sample}), (0x03, {}),
]
here = sys.argv[1]
os.makedirs(here, exist_ok=True)
for i, (t, body) in enumerate(msgs):
    b = enc(body)
    with open(os.path.join(here, 'wire_%02x.bin' % t), 'wb') as f:
        f.write(b'\x00' + wire(1, 1, enc({})) + wire(t, 2, b))
    with open(os.path.join(here, 'raw_%02x.bin' % t), 'wb') as f:
        samples = enc(msgs[11][1])
        f.write(b'\x03' + bytes([len(samples) + 1 if len(samples) < 255 else 255, 0x30]) + samples
                + bytes([min(len(b) + 1, 255), t]) + b)
