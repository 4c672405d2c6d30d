"""Opt-in: a real local model through llama.cpp. Run with your own GGUF file:

    pip install -e '.[llamacpp]'
    SEISAKU_QA_TEST_GGUF=/path/to/model.gguf python -m pytest tests/rag/test_llamacpp.py

No GGUF weights ship in any PyPI package, so CI cannot run this.
"""

from __future__ import annotations

import os

import pytest

from rag.generate import LLMGenerator
from rag.llm import LLMSettings

GGUF = os.environ.get("SEISAKU_QA_TEST_GGUF", "")

pytestmark = pytest.mark.skipif(not GGUF, reason="set SEISAKU_QA_TEST_GGUF to a GGUF model file to run")


def test_local_model_answers_with_checked_citations(qa):
    generator = LLMGenerator.from_settings(
        LLMSettings(generator="llamacpp", model_path=GGUF, timeout_s=300), qa.tokenizer
    )
    answer = qa.ask("AISIはいつ設立されましたか？", generator=generator)
    assert not answer.notice, answer.notice
    assert answer.generator.startswith("llamacpp:") and answer.citations
    assert answer.checks and sum(c.supported for c in answer.checks) >= 1
