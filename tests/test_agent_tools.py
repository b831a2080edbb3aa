"""Operations as LangChain tools: one per operation, schemas from the registry, calls stored as
turns, bad arguments answered in words. Steps run on `WorldRunner` (tests/world_runner.py)."""
from __future__ import annotations

from langchain_core.messages import ToolMessage
from world_runner import WorldRunner

from agent.api import Atelier
from agent.interfaces.tools import operation_tools
from pipelines.spec import OPERATIONS


def call(tool, args: dict, call_id: str = "1") -> ToolMessage:
    return tool.invoke({"name": tool.name, "args": args, "id": call_id, "type": "tool_call"})


def test_one_tool_per_operation_with_its_schema(tmp_path):
    session = Atelier(home=tmp_path, models=WorldRunner()).session("agent")
    tools = {t.name: t for t in operation_tools(session)}
    assert list(tools) == list(OPERATIONS)
    schema = tools["inpaint"].args_schema.model_json_schema()
    assert {"prompt", "target", "inputs", "seed", "steps"} <= set(schema["properties"])
    assert "Needs: image" in tools["inpaint"].description


def test_tool_calls_are_turns_of_the_session(tmp_path):
    session = Atelier(home=tmp_path, models=WorldRunner()).session("agent")
    tools = {t.name: t for t in operation_tools(session)}
    made = call(tools["layout"], {"objects": [
        {"phrase": "a large red circle", "box": [0.1, 0.34, 0.42, 0.66]}], "seed": 4})
    assert made.content == "made img_1; its check passed. The current image is img_1."
    assert made.artifact.ok and made.artifact.image.id == "img_1"
    edited = call(tools["inpaint"], {"prompt": "a large green circle at the left",
                                     "target": "the red circle", "inputs": ["img_1"]}, "2")
    assert edited.content.startswith("made img_2; its check passed")
    assert session.image("img_2").parent_ids == ("img_1",)
    assert [t.request for t in session.history()] == ["layout tool call", "inpaint tool call"]


def test_bad_arguments_and_unknown_images_come_back_in_words(tmp_path):
    session = Atelier(home=tmp_path, models=WorldRunner()).session("agent")
    tools = {t.name: t for t in operation_tools(session)}
    bad = call(tools["generate"], {"prompt": "a red circle", "steps": -1, "guidance": 99})
    assert bad.content.startswith("invalid arguments: ")
    assert "steps" in bad.content and "guidance" in bad.content
    missing = call(tools["edit"], {"instruction": "make it green", "inputs": ["img_5"]})
    assert missing.content.startswith("failed: ") and "img_5" in missing.content
    path = call(tools["edit"], {"instruction": "x", "inputs": ["/etc/passwd"]})
    assert path.content.startswith("invalid arguments: ") and "inputs" in path.content
    assert session.images() == []
