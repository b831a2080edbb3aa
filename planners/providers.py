"""Chat models from one option: `openai:MODEL`, `ollama:MODEL`, `hf:ID_OR_PATH`.

Each provider's package is imported only when asked for (`pip install -e '.[llm]'` brings
them). Keys and base URLs come from environment variables, never from arguments, so they do
not end up in shell history or logs:

- openai: any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, OpenAI).
  ATELIER_LLM_BASE_URL or OPENAI_BASE_URL; ATELIER_LLM_API_KEY or OPENAI_API_KEY (a local
  server without keys gets a placeholder key).
- ollama: OLLAMA_HOST (default http://localhost:11434).
- hf: a local transformers causal LM (planners/local.py), decoding freely or, with
  ATELIER_LLM_DECODING=schema, under the plan's JSON schema (xgrammar); ID_OR_PATH is a
  folder on disk or a model id already in the Hugging Face cache.
"""
from __future__ import annotations

import os

PROVIDERS = ("openai", "ollama", "hf")
EXTRA_HINT = "install the LLM extra: pip install -e '.[llm]'"


class ProviderError(RuntimeError):
    """The --llm option cannot be turned into a chat model; the message says how to fix it."""


def parse_spec(spec: str) -> tuple[str, str]:
    provider, sep, name = (spec or "").partition(":")
    if not sep or provider not in PROVIDERS or not name.strip():
        raise ProviderError(f"--llm {spec!r} is not PROVIDER:MODEL; use openai:MODEL, "
                            "ollama:MODEL or hf:ID_OR_PATH")
    return provider, name.strip()


def _import(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ProviderError(f"this provider needs the {package} package; {EXTRA_HINT}") from None


def decoding() -> str:
    """ATELIER_LLM_DECODING: "free" (default) or "schema" (local models decode under the
    plan's JSON schema; see planners/local.py for what each measured)."""
    value = os.environ.get("ATELIER_LLM_DECODING", "free").strip().lower() or "free"
    if value not in ("free", "schema"):
        raise ProviderError(f"ATELIER_LLM_DECODING={value!r} is not free or schema")
    return value


def chat_model(spec: str, temperature: float = 0.0, **options):
    """A LangChain chat model for `spec`. Temperature 0: a plan should not change between
    runs of the same request."""
    provider, name = parse_spec(spec)
    if provider == "openai":
        module = _import("langchain_openai", "langchain-openai")
        base_url = os.environ.get("ATELIER_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        api_key = os.environ.get("ATELIER_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not api_key and not base_url:
            raise ProviderError("openai:MODEL needs OPENAI_API_KEY, or ATELIER_LLM_BASE_URL for "
                                "a local OpenAI-compatible server")
        return module.ChatOpenAI(model=name, base_url=base_url, api_key=api_key or "not-needed",
                                 temperature=temperature, **options)
    if provider == "ollama":
        module = _import("langchain_ollama", "langchain-ollama")
        kwargs = {"base_url": os.environ["OLLAMA_HOST"]} if os.environ.get("OLLAMA_HOST") else {}
        return module.ChatOllama(model=name, temperature=temperature, **kwargs, **options)
    _import("xgrammar", "xgrammar")  # decoding under the plan's schema needs it
    from .local import LocalChatModel

    if os.path.isdir(name):
        # A folder on disk needs nothing from the hub: never ask it.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return LocalChatModel.load(name, max_new_tokens=options.pop("max_new_tokens", 1024),
                                   constrained=decoding() == "schema")
    except OSError as error:
        raise ProviderError(f"hf:{name}: cannot load the model ({error}); give a local folder "
                            "or a model id already downloaded") from None
