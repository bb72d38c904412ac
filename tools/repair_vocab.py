#!/usr/bin/env python3
"""repair_vocab.py - restores a GGUF file that went through a lossy UTF-8
round trip (every byte sequence that was not valid UTF-8 replaced by U+FFFD,
the bytes EF BF BD), as happened to the shipped ggml-vocab-gpt-2.gguf.

Each EF BF BD stands for one lost byte (>= 0x80). The header is re-parsed
with backtracking: a lost byte in a count or a string length is tried with
every candidate value and the one under which the rest of the header parses
to the end of the file is kept. Lost bytes in values that any candidate
parses (floats, token ids) are taken from --fix KEY=VALUE (a float) or, for
tokenizer.ggml.{bos,eos}_token_id, from the position of --eog-token in the
token list. The result is re-encoded byte for byte otherwise unchanged.

usage: repair_vocab.py IN OUT [--fix KEY=VALUE ...] [--eog-token TEXT]
Only for tokenizer-only files (no tensors).
"""
import struct
import sys

MARK = b"\xef\xbf\xbd"
FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B",
       10: "<Q", 11: "<q", 12: "<d"}


class Fail(Exception):
    pass


def read_raw(buf, pos, n):
    """n original bytes starting at pos: returns (bytes with None for lost ones, new pos)."""
    out = []
    while len(out) < n:
        if buf.startswith(MARK, pos):
            out.append(None)
            pos += 3
        elif pos < len(buf):
            out.append(buf[pos])
            pos += 1
        else:
            raise Fail("eof")
    return out, pos


def candidates(raw):
    """Every way to fill the lost bytes (each >= 0x80)."""
    lost = [i for i, b in enumerate(raw) if b is None]
    if not lost:
        yield bytes(raw)
        return
    if len(lost) > 1:
        raise Fail("several lost bytes in one integer")
    for v in range(0x80, 0x100):
        r = list(raw)
        r[lost[0]] = v
        yield bytes(r)


class Parser:
    def __init__(self, buf, fixes, eog):
        self.buf, self.fixes, self.eog = buf, fixes, eog

    def u64_options(self, pos):
        raw, pos = read_raw(self.buf, pos, 8)
        return [(struct.unpack("<Q", c)[0], pos) for c in candidates(raw)]

    def string(self, pos, k):
        """Parses a string at pos, then continues with k(value, pos)."""
        for n, p in self.u64_options(pos):
            if n > len(self.buf) - p:
                continue
            s = self.buf[p:p + n]
            if MARK in s and n < 3:
                continue
            try:
                return k(s, p + n)
            except Fail:
                continue
        raise Fail("string")

    def array(self, pos, k):
        raw, pos = read_raw(self.buf, pos, 4)
        if None in raw:
            raise Fail("lost byte in element type")
        et = struct.unpack("<I", bytes(raw))[0]
        for count, p in self.u64_options(pos):
            if count > len(self.buf) - p:
                continue
            try:
                return self.elems(et, count, p, [], k)
            except Fail:
                continue
        raise Fail("array")

    def elems(self, et, count, pos, acc, k):
        # iterative for fixed-size and strings without lost length bytes, recursive otherwise
        while len(acc) < count:
            if et == 8:
                if self.buf.startswith(MARK, pos, pos + 8) or MARK in self.buf[pos:pos + 8]:
                    return self.string(pos, lambda s, p: self.elems(et, count, p, acc + [s], k))
                if pos + 8 > len(self.buf):
                    raise Fail("eof")
                n = struct.unpack_from("<Q", self.buf, pos)[0]
                if n > len(self.buf) - pos - 8:
                    raise Fail("string too long")
                acc.append(self.buf[pos + 8:pos + 8 + n])
                pos += 8 + n
            elif et in FIXED:
                raw, pos = read_raw(self.buf, pos, FIXED[et])
                if None in raw:
                    raise Fail("lost byte in a fixed array element")
                acc.append(struct.unpack(FMT[et], bytes(raw))[0])
            else:
                raise Fail("nested arrays not supported")
        return k((et, acc), pos)

    def kvs(self, pos, n, acc):
        if len(acc) == n:
            if pos != len(self.buf):
                raise Fail("trailing bytes")
            return acc
        return self.string(pos, lambda key, p: self.value(key, p, n, acc))

    def value(self, key, pos, n, acc):
        raw, pos = read_raw(self.buf, pos, 4)
        if None in raw:
            raise Fail("lost byte in type")
        t = struct.unpack("<I", bytes(raw))[0]
        name = key.decode("utf-8", "replace")
        if t == 8:
            return self.string(pos, lambda s, p: self.kvs(p, n, acc + [(key, t, s)]))
        if t == 9:
            return self.array(pos, lambda v, p: self.kvs(p, n, acc + [(key, t, v)]))
        if t not in FIXED:
            raise Fail("bad type")
        raw, pos = read_raw(self.buf, pos, FIXED[t])
        if None in raw:
            if name in self.fixes:
                v = self.fixes[name]
            elif name.endswith(("bos_token_id", "eos_token_id")) and self.eog is not None:
                v = ("eog",)
            else:
                raise Fail(f"lost byte in value of {name}; give --fix {name}=VALUE")
        else:
            v = struct.unpack(FMT[t], bytes(raw))[0]
        return self.kvs(pos, n, acc + [(key, t, v)])


def encode(kvs, version):
    tokens = next((v[1] for k, t, v in kvs if k == b"tokenizer.ggml.tokens"), [])
    out = [b"GGUF", struct.pack("<IQQ", version, 0, len(kvs))]
    for key, t, v in kvs:
        out.append(struct.pack("<Q", len(key)) + key + struct.pack("<I", t))
        if t == 8:
            out.append(struct.pack("<Q", len(v)) + v)
        elif t == 9:
            et, items = v
            out.append(struct.pack("<IQ", et, len(items)))
            for it in items:
                out.append(struct.pack("<Q", len(it)) + it if et == 8 else struct.pack(FMT[et], it))
        else:
            if v == ("eog",):
                v = tokens.index(EOG)
            out.append(struct.pack(FMT[t], v))
    return b"".join(out)


if __name__ == "__main__":
    sys.setrecursionlimit(100000)
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        sys.exit(2)
    src, dst, rest = args[0], args[1], args[2:]
    fixes, EOG = {}, None
    i = 0
    while i < len(rest):
        if rest[i] == "--fix":
            k, v = rest[i + 1].split("=", 1)
            fixes[k] = float(v)
            i += 2
        elif rest[i] == "--eog-token":
            EOG = rest[i + 1].encode()
            i += 2
        else:
            sys.exit(f"unknown argument {rest[i]}")
    buf = open(src, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    if magic != b"GGUF" or n_tensors != 0:
        sys.exit("not a tokenizer-only GGUF file")
    kvs = Parser(buf, fixes, EOG).kvs(24, n_kv, [])
    data = encode(kvs, version)
    open(dst, "wb").write(data)
    print(f"{dst}: {len(kvs)} keys, {len(data)} bytes, {buf.count(MARK)} lost bytes restored")
