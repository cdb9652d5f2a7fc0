"""Wire-neutral types: validation, and lossless dict round-trips (they live in checkpoints)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaizen.providers import LLMResponse, Message, ToolCall, ToolSpec, Usage

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=20)
tool_calls = st.builds(
    ToolCall, id=names, name=names, arguments=st.dictionaries(st.text(max_size=8), json_values, max_size=4)
)


@st.composite
def messages(draw: Any) -> Message:
    role = draw(st.sampled_from(["system", "user", "assistant", "tool"]))
    return Message(
        role=role,
        content=draw(st.text()),
        tool_calls=tuple(draw(st.lists(tool_calls, max_size=3))) if role == "assistant" else (),
        tool_call_id=draw(names) if role == "tool" else None,
        name=draw(st.none() | names),
    )


@settings(max_examples=200, deadline=None)
@given(messages())
def test_message_dict_round_trip(message: Message) -> None:
    data = message.to_dict()
    assert Message.from_dict(data) == message
    # and through real JSON bytes, as a checkpoint store would write it
    assert Message.from_dict(orjson.loads(orjson.dumps(data))) == message


@settings(max_examples=200, deadline=None)
@given(tool_calls)
def test_tool_call_dict_round_trip(call: ToolCall) -> None:
    assert ToolCall.from_dict(call.to_dict()) == call
    assert ToolCall.from_dict(orjson.loads(orjson.dumps(call.to_dict()))) == call


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        LLMResponse,
        content=st.text(),
        tool_calls=st.lists(tool_calls, max_size=3).map(tuple),
        usage=st.builds(Usage, st.integers(0, 10**9), st.integers(0, 10**9)),
        model=st.text(),
        finish_reason=st.none() | st.text(),
    )
)
def test_llm_response_dict_round_trip(response: LLMResponse) -> None:
    assert LLMResponse.from_dict(orjson.loads(orjson.dumps(response.to_dict()))) == response


def test_to_dict_omits_empty_optional_fields() -> None:
    assert Message("user", "hi").to_dict() == {"role": "user", "content": "hi"}
    call = ToolCall("call_1", "Read", {"path": "a"})
    assert Message("assistant", tool_calls=(call,)).to_dict() == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "name": "Read", "arguments": {"path": "a"}}],
    }
    assert Message("tool", "ok", tool_call_id="call_1", name="Read").to_dict() == {
        "role": "tool",
        "content": "ok",
        "tool_call_id": "call_1",
        "name": "Read",
    }


def test_invalid_role_is_named() -> None:
    with pytest.raises(ValueError, match="'robot'"):
        Message("robot", "hi")
    with pytest.raises(ValueError, match="'robot'"):
        Message.from_dict({"role": "robot"})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"content": "hi"}, "role"),
        ({"role": "user", "content": 5}, "content"),
        ({"role": "user", "colour": "red"}, "colour"),
        ({"role": "tool", "content": "x"}, "tool_call_id"),
        ({"role": "user", "tool_call_id": "c1"}, "tool_call_id"),
        ({"role": "user", "tool_calls": [{"id": "c", "name": "f", "arguments": {}}]}, "tool_calls"),
        ({"role": "assistant", "tool_calls": "nope"}, "tool_calls"),
        ({"role": "assistant", "tool_calls": [{"id": "c", "name": "f"}]}, "arguments"),
        ({"role": "assistant", "tool_calls": [{"id": "", "name": "f", "arguments": {}}]}, "ToolCall.id"),
        ({"role": "assistant", "tool_calls": [{"id": "c", "name": "f", "arguments": []}]}, "arguments"),
        ({"role": "user", "name": 7}, "name"),
        ("not a dict", "dict"),
    ],
)
def test_from_dict_names_the_bad_field(data: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Message.from_dict(data)


def test_tool_call_arguments_must_be_json() -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        ToolCall("c", "f", {"x": float("nan")})
    with pytest.raises(TypeError, match="not JSON"):
        ToolCall("c", "f", {"x": object()})
    with pytest.raises(ValueError, match="64 bits"):
        ToolCall("c", "f", {"x": 2**70})


def test_tool_call_owns_its_arguments() -> None:
    args = {"path": "a", "opts": {"n": 1}}
    call = ToolCall("c", "f", args)
    args["opts"]["n"] = 2
    call.to_dict()["arguments"]["path"] = "b"
    assert call.arguments == {"path": "a", "opts": {"n": 1}}


def test_lists_become_tuples() -> None:
    call = ToolCall("c", "f", {})
    message = Message("assistant", tool_calls=[call])  # type: ignore[arg-type]
    assert message.tool_calls == (call,)


def test_usage_adds_up() -> None:
    total = Usage(10, 2) + Usage(5, 1)
    assert total == Usage(15, 3) and total.total_tokens == 18
    assert sum([Usage(1, 1), Usage(2, 2)], Usage()) == Usage(3, 3)
    with pytest.raises(ValueError, match="input_tokens"):
        Usage(-1, 0)


def test_response_to_message_continues_the_conversation() -> None:
    call = ToolCall("call_1", "Read", {"path": "a"})
    response = LLMResponse("", (call,), Usage(1, 1), "m", "tool_calls")
    assert response.to_message() == Message("assistant", "", (call,))


def test_tool_spec_schema() -> None:
    assert ToolSpec("noop", "does nothing", {}).input_schema() == {"type": "object", "properties": {}}
    with pytest.raises(ValueError, match="name"):
        ToolSpec("", "x", {})
    with pytest.raises(TypeError, match="JSON Schema"):
        ToolSpec("f", "x", "not a schema")  # type: ignore[arg-type]
