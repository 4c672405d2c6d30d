"""LLM settings: from the environment, validated, and never carrying the API key."""

from __future__ import annotations

import pytest

from rag.llm import LLMError, LLMSettings, load_llm


def test_settings_come_from_the_environment_and_overrides(monkeypatch):
    monkeypatch.setenv("SEISAKU_QA_GENERATOR", "openai")
    monkeypatch.setenv("SEISAKU_QA_LLM_MODEL", "qwen")
    monkeypatch.setenv("SEISAKU_QA_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    settings = LLMSettings.from_env(timeout_s=5.0, model=None)
    assert (settings.generator, settings.model, settings.timeout_s) == ("openai", "qwen", 5.0)
    assert settings.uses_llm and settings.describe() == "openai:qwen@http://127.0.0.1:8000/v1"


def test_api_key_is_used_but_never_kept_on_settings(monkeypatch):
    secret = "sk-test-secret-1234567890"
    monkeypatch.setenv("SEISAKU_QA_LLM_API_KEY", secret)
    settings = LLMSettings(generator="openai", model="m", base_url="http://127.0.0.1:9/v1")
    llm = load_llm(settings)
    assert llm.api_key == secret
    assert secret not in repr(settings) and secret not in settings.describe()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (LLMSettings(generator="openai"), "SEISAKU_QA_LLM_BASE_URL"),
        (LLMSettings(generator="llamacpp", model_path="/no/such/model.gguf"), "GGUF"),
        (LLMSettings(generator="extractive"), "LLM を使いません"),
    ],
)
def test_misconfiguration_is_a_clear_error(settings, message):
    with pytest.raises(LLMError, match=message):
        load_llm(settings)


def test_unknown_generator_is_rejected(monkeypatch):
    monkeypatch.setenv("SEISAKU_QA_GENERATOR", "gpt")
    with pytest.raises(LLMError, match="gpt"):
        LLMSettings.from_env()
