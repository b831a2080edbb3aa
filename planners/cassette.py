"""Record and replay chat model replies, so a session with a real LLM replays offline, exactly.

A cassette is a JSON file mapping a key (a hash of the message sequence and the bound tools
and options) to the model's reply message. `CassetteChatModel` wraps a model: a call whose
key is in the cassette is answered from it; any other call goes to the wrapped model and is
recorded, or, with no model to ask (replay only), fails with CassetteMiss naming the call.

    model = CassetteChatModel.wrap(chat_model("ollama:qwen2.5"), "plans.json")  # record
    model = CassetteChatModel.replay("plans.json")                             # offline
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

VERSION = 1


class CassetteMiss(LookupError):
    """A replay-only cassette has no reply for this call: record it with the real model."""


def _canonical_messages(messages: list[BaseMessage]) -> list[dict]:
    out = []
    for m in messages:
        item = {"type": m.type, "content": m.content}
        if isinstance(m, AIMessage) and m.tool_calls:
            item["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in m.tool_calls]
        out.append(item)
    return out


def call_key(messages: list[BaseMessage], tools=None, options: dict | None = None) -> str:
    """Same messages, tools and options: same key. Ids and metadata are left out: they
    change between runs without changing what was asked."""
    payload = {"messages": _canonical_messages(messages),
               "tools": [convert_to_openai_tool(t) for t in tools or []],
               "options": options or {}}
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class CassetteChatModel(BaseChatModel):
    """A chat model answered from a cassette file, recording what it has not seen yet."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    path: Path
    inner: BaseChatModel | None = None

    @classmethod
    def wrap(cls, model: BaseChatModel, path: str | Path) -> "CassetteChatModel":
        return cls(path=Path(path), inner=model, profile=getattr(model, "profile", None))

    @classmethod
    def replay(cls, path: str | Path) -> "CassetteChatModel":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no cassette to replay; record one first")
        return cls(path=path)

    @property
    def _llm_type(self) -> str:
        return "cassette"

    # --- storage ------------------------------------------------------------------------
    def entries(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("version") != VERSION:
            raise ValueError(f"{self.path}: cassette version {data.get('version')!r}, expected "
                             f"{VERSION}; record it again")
        return data["entries"]

    def _save(self, key: str, entry: dict) -> None:
        entries = self.entries()
        entries[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: an interrupted run never leaves half a cassette.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": VERSION, "entries": entries}, out, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    # --- the model ----------------------------------------------------------------------
    def bind_tools(self, tools, *, tool_choice: str | None = None, **kwargs: Any):
        # The tools travel as bound kwargs, so the key sees them and, when recording, the
        # wrapped model binds them its own way.
        return self.bind(cassette_tools=list(tools), cassette_tool_choice=tool_choice,
                         cassette_tool_kwargs=kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager=None, **kwargs: Any) -> ChatResult:
        tools = kwargs.pop("cassette_tools", None)
        tool_choice = kwargs.pop("cassette_tool_choice", None)
        tool_kwargs = kwargs.pop("cassette_tool_kwargs", None) or {}
        options = {"stop": stop, "tool_choice": tool_choice, **kwargs}
        options = {k: v for k, v in options.items() if v is not None
                   and k != "ls_structured_output_format"}
        key = call_key(messages, tools, options)
        entry = self.entries().get(key)
        if entry is None:
            if self.inner is None:
                preview = str(messages[-1].content)[:120] if messages else ""
                raise CassetteMiss(f"{self.path}: no recorded reply for this call (last message "
                                   f"{preview!r}); record it with the real model")
            model = self.inner
            if tools:
                tool_kwargs = {k: v for k, v in tool_kwargs.items()
                               if k != "ls_structured_output_format"}
                model = model.bind_tools(tools, tool_choice=tool_choice, **tool_kwargs)
            reply = model.invoke(messages, stop=stop, **kwargs)
            entry = {"request": str(messages[-1].content)[:200] if messages else "",
                     "reply": message_to_dict(reply)}
            self._save(key, entry)
        message = messages_from_dict([entry["reply"]])[0]
        return ChatResult(generations=[ChatGeneration(message=message)])
