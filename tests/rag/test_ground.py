from rag.ground import check_answer, split_answer
from rag.text import default_tokenizer

PASSAGES = {1: "AI法は2025年5月28日成立", 2: "9月1日にはAI戦略本部の設置に係る規定等も含め、全面施行された。"}


def test_markers_belong_to_the_sentence_they_close():
    parts = split_answer("成立は2025年5月28日[1]。全面施行は9月1日。[2]")
    assert parts == [("成立は2025年5月28日。", [1]), ("全面施行は9月1日。", [2])]


def test_supported_sentences_pass_and_invented_dates_or_missing_citations_fail():
    checks = check_answer(
        "AI法は2025年5月28日に成立した[1]。9月1日に全面施行された[2]。2026年に改正された[1]。予算は十分だ。",
        PASSAGES,
        default_tokenizer(),
    )
    assert [c.supported for c in checks] == [True, True, False, False]
    assert "2026" in checks[2].reason and checks[3].reason == "no citation"
