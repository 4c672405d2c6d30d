"""Optional LLM backends for fluent answers, built from explicit settings (no global Settings).

`openai` talks to any OpenAI-compatible server (vLLM, Ollama, llama.cpp's
server, a cloud deployment) through llama-index's OpenAILike; `llamacpp` runs
a local GGUF file through llama-index's LlamaCPP (the `llamacpp` extra).
The API key is read from the environment when the client is built and is
never stored on the settings object, so it cannot end up in a log or report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from llama_index.core.llms import LLM

GENERATORS = ("extractive", "openai", "llamacpp")
API_KEY_VARIABLES = ("SEISAKU_QA_LLM_API_KEY", "OPENAI_API_KEY")
DEFAULT_TIMEOUT_S = 30.0


class LLMError(RuntimeError):
    """The LLM could not produce an answer; the message says why, in Japanese, for the user."""


@dataclass(frozen=True)
class LLMSettings:
    generator: str = "extractive"
    model: str = ""  # model name on the OpenAI-compatible server
    base_url: str = ""  # e.g. http://localhost:8000/v1
    model_path: str = ""  # GGUF file for llamacpp
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_tokens: int = 512

    @classmethod
    def from_env(cls, **overrides: object) -> LLMSettings:
        """Settings from SEISAKU_QA_GENERATOR / _LLM_MODEL / _LLM_BASE_URL / _GGUF / _LLM_TIMEOUT, then overrides."""
        env = os.environ
        values: dict[str, object] = {
            "generator": env.get("SEISAKU_QA_GENERATOR", "extractive"),
            "model": env.get("SEISAKU_QA_LLM_MODEL", ""),
            "base_url": env.get("SEISAKU_QA_LLM_BASE_URL", env.get("OPENAI_BASE_URL", "")),
            "model_path": env.get("SEISAKU_QA_GGUF", ""),
            "timeout_s": float(env.get("SEISAKU_QA_LLM_TIMEOUT", DEFAULT_TIMEOUT_S)),
        }
        values.update({k: v for k, v in overrides.items() if v not in (None, "")})
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.generator not in GENERATORS:
            raise LLMError(f"回答方式 {settings.generator!r} は使えません（{', '.join(GENERATORS)} のいずれか）。")
        return settings

    @property
    def uses_llm(self) -> bool:
        return self.generator != "extractive"

    def describe(self) -> str:
        """What to show users and reports (never the key)."""
        if self.generator == "openai":
            return f"openai:{self.model}@{self.base_url}"
        if self.generator == "llamacpp":
            return f"llamacpp:{os.path.basename(self.model_path)}"
        return "extractive"


def load_llm(settings: LLMSettings) -> LLM:
    """A llama-index LLM for `settings`; a clear LLMError when it is not configured or not installed."""
    if settings.generator == "openai":
        if not settings.base_url or not settings.model:
            raise LLMError(
                "OpenAI 互換サーバーの URL とモデル名を設定してください"
                "（SEISAKU_QA_LLM_BASE_URL, SEISAKU_QA_LLM_MODEL）。"
            )
        from llama_index.llms.openai_like import OpenAILike

        api_key = next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), "not-needed")
        return OpenAILike(
            model=settings.model,
            api_base=settings.base_url,
            api_key=api_key,
            is_chat_model=True,
            temperature=0.0,
            max_tokens=settings.max_tokens,
            timeout=settings.timeout_s,
            max_retries=0,  # a retry would double the wait; the extractive fallback answers instead
        )
    if settings.generator == "llamacpp":
        if not settings.model_path or not os.path.isfile(settings.model_path):
            raise LLMError(f"GGUF ファイルが見つかりません: {settings.model_path or '（未設定: SEISAKU_QA_GGUF）'}")
        try:
            from llama_index.llms.llama_cpp import LlamaCPP
        except ImportError as exc:
            raise LLMError("llama.cpp を使うには `pip install -e '.[llamacpp]'` を実行してください。") from exc
        return LlamaCPP(
            model_path=settings.model_path,
            temperature=0.0,
            max_new_tokens=settings.max_tokens,
            context_window=4096,
            verbose=False,
        )
    raise LLMError("抽出型の回答方式では LLM を使いません。")
