"""A local transformers chat model whose structured output is decoded under the schema.

    model = LocalChatModel.load("models/shapes-planner")     # or a hub id in the HF cache
    structured = model.with_structured_output(schema, include_raw=True)
    structured.invoke(messages)   # {"raw": AIMessage, "parsed": dict, "parsing_error": None}

With `constrained=True`, `with_structured_output` compiles the JSON schema into a grammar
(xgrammar) and masks, at every decoding step, each token that would leave it: the reply is
always JSON that the schema accepts. The grammar fixes the order of an object's properties to
the schema's, so a model trained to write them in other orders loses fields: the shipped
shapes-planner writes an added object's shape before its colour and a changed one's colour
before its shape, and under the grammar it planned 95.0% / 74.2% of the planner cases right
against 99.5% / 78.4% decoding freely. So free decoding (read as JSON, one repair round) is the
default and `ATELIER_LLM_DECODING=schema` turns the grammar on. Greedy decoding either way: a
plan should not change between runs of one request.
"""
from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from pydantic import ConfigDict, PrivateAttr

from pipelines.once import Once, building

ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LocalChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    name_or_path: str
    max_new_tokens: int = 1024
    constrained: bool = False
    _loaded: Once = PrivateAttr(default_factory=Once)
    _grammars: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def load(cls, name_or_path: str, **settings) -> "LocalChatModel":
        model = cls(name_or_path=name_or_path, **settings)
        model.parts()  # a wrong path fails here, with the provider's message
        return model

    @property
    def _llm_type(self) -> str:
        return "atelier-local"

    def parts(self):
        """(model, tokenizer), loaded once."""
        return self._loaded.get(self._load)

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with building():
            tokenizer = AutoTokenizer.from_pretrained(self.name_or_path)
            model = AutoModelForCausalLM.from_pretrained(self.name_or_path).eval()
        return model, tokenizer

    def _compiler(self):
        import xgrammar

        model, tokenizer = self.parts()
        if "compiler" not in self._grammars:
            info = xgrammar.TokenizerInfo.from_huggingface(
                tokenizer, vocab_size=model.config.get_text_config().vocab_size)
            self._grammars["compiler"] = xgrammar.GrammarCompiler(info)
        return self._grammars["compiler"]

    def grammar(self, schema: dict):
        # The grammar keeps the schema's property order (a model writes "rationale" before
        # "steps" as it was trained to), so the schema's text is compiled as it is; compact
        # JSON, so a masked model cannot drift into whitespace.
        text = json.dumps(schema)
        if text not in self._grammars:
            self._grammars[text] = self._compiler().compile_json_schema(
                text, any_whitespace=False, separators=(",", ":"))
        return self._grammars[text]

    # --- decoding -----------------------------------------------------------------------

    def _decode(self, messages: list[BaseMessage], grammar=None) -> str:
        import torch

        model, tokenizer = self.parts()
        chat = [{"role": ROLES.get(m.type, "user"), "content": _text(m.content)}
                for m in messages]
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        processors = []
        if grammar is not None:
            import xgrammar

            processors.append(xgrammar.contrib.hf.LogitsProcessor(grammar))
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 logits_processor=processors)
        return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        reply = AIMessage(self._decode(messages))
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs):
        if not self.constrained:
            raise NotImplementedError("free decoding: replies are read as JSON from the text")
        if not isinstance(schema, dict):
            schema = schema.model_json_schema()
        grammar = self.grammar(schema)

        def structured(messages) -> Any:
            if hasattr(messages, "to_messages"):
                messages = messages.to_messages()
            raw = AIMessage(self._decode(list(messages), grammar))
            try:
                parsed, error = json.loads(raw.content), None
            except json.JSONDecodeError as problem:  # cut off at max_new_tokens
                parsed, error = None, problem
            return {"raw": raw, "parsed": parsed, "parsing_error": error} if include_raw \
                else parsed

        return RunnableLambda(structured)


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
