from rag.ground import check_answer, check_sentence, split_answer
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


PASSAGE = (
    "2024年2月に10府省、5政府系機関が共同してAIセーフティ・インスティテュートを設立した。"
    "AISIは政府のAIセーフティに関する取り組みを支援する機関である。"
)


def test_paraphrase_is_supported_through_embedding_similarity(qa):
    paraphrase = "AISIは政府のAIセーフティの取り組みを後押しする組織だ。"
    assert not check_sentence(paraphrase, [PASSAGE], qa.tokenizer)[0]  # too few shared words alone
    ok, reason = check_sentence(paraphrase, [PASSAGE], qa.tokenizer, qa.similarity)
    assert ok and "similarity" in reason


def test_similarity_does_not_rescue_a_different_claim_or_a_wrong_number(qa):
    other = "AISIは民間企業の広告事業を支援する組織である。"
    assert not check_sentence(other, [PASSAGE], qa.tokenizer, qa.similarity)[0]
    wrong_year = "AISIは2023年に政府のAIセーフティの取り組みを後押しする組織として作られた。"
    ok, reason = check_sentence(wrong_year, [PASSAGE], qa.tokenizer, qa.similarity)
    assert not ok and "2023" in reason


def test_a_part_said_to_be_missing_is_not_a_claim_to_check():
    from rag.ground import check_answer
    from rag.text import default_tokenizer

    answer = "AI法は2025年に成立した。[1]\n「予算はいくら」については資料には記載が見つかりませんでした。"
    checks = check_answer(answer, {1: "AI法は2025年に成立した。"}, default_tokenizer())
    assert [c.supported for c in checks] == [True]
    assert not check_answer("罰金は100万円である。", {1: "AI法は2025年に成立した。"}, default_tokenizer())[0].supported
