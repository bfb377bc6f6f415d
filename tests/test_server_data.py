"""Sloppy server data gets a result or a clear error: a table of malformed answers per endpoint.

Each row makes the emulator answer one endpoint with a malformed body (over a real socket); the
call must return a result or raise a `WiroError` — never a raw KeyError, TypeError, ValueError
or OverflowError from inside the package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from conftest import make_client

from wiro_jupyter import WbotChat, Wiro, WiroError
from wiro_jupyter._fields import to_number

OK = {"result": True, "errors": []}


def tool(**fields: Any) -> dict[str, Any]:
    item = {"slugowner": "wiro", "slugproject": "sloppy", "title": "Sloppy", "parameters": []}
    item.update(fields)
    return {**OK, "tool": [item]}


def number_param(**fields: Any) -> dict[str, Any]:
    param = {"id": "steps", "type": "range", "label": "Steps", "minvalue": "1", "maxvalue": "50", "defaultvalue": 10}
    param.update(fields)
    return tool(parameters=[{"title": "Inputs", "items": [param]}])


def task_item(**fields: Any) -> dict[str, Any]:
    item = {"id": "777", "socketaccesstoken": "tok777", "status": "task_postprocess_end", "pexit": "0", "outputs": []}
    item.update(fields)
    return {**OK, "tasklist": [item]}


WIRO_ROWS: list[tuple[str, str, Any, Callable[[Wiro], Any]]] = [
    ("Tool/List: tool is an object", "Tool/List", {**OK, "tool": {"a": 1}}, lambda w: w.models()),
    ("Tool/List: tool is text", "Tool/List", {**OK, "tool": "none"}, lambda w: w.models()),
    ("Tool/List: items are not objects", "Tool/List", {**OK, "tool": [1, "x", None], "total": "NaN"}, lambda w: w.models()),
    ("Tool/List: total overflows", "Tool/List", {**OK, "tool": [], "total": "1e999"}, lambda w: w.models()),
    ("Tool/List: the answer is a list", "Tool/List", [1, 2], lambda w: w.models()),
    ("Tool/List: not JSON", "Tool/List", "<html>maintenance</html>", lambda w: w.models()),
    ("Tool/Detail: maxvalue overflows", "Tool/Detail", number_param(maxvalue="1e999"), lambda w: w.model("wiro/sloppy")),
    ("Tool/Detail: incrementby is prose", "Tool/Detail", number_param(incrementby="abc"), lambda w: w.model("wiro/sloppy")),
    ("Tool/Detail: NaN bounds", "Tool/Detail", number_param(minvalue="NaN", maxvalue=""), lambda w: w.model("wiro/sloppy")),
    (
        "Tool/Detail: options is an object",
        "Tool/Detail",
        number_param(type="select", options={"a": 1}),
        lambda w: w.model("wiro/sloppy"),
    ),
    ("Tool/Detail: parameters is an object", "Tool/Detail", tool(parameters={"x": 1}), lambda w: w.model("wiro/sloppy")),
    ("Tool/Detail: tool is text", "Tool/Detail", {**OK, "tool": "x"}, lambda w: w.model("wiro/sloppy")),
    (
        "Tool/Detail: dynamicprice is junk",
        "Tool/Detail",
        tool(dynamicprice="[{", approximatelycost="1e999"),
        lambda w: w.model("wiro/sloppy"),
    ),
    ("Task/Detail: tasklist is an object", "Task/Detail", {**OK, "tasklist": {"0": {}}}, lambda w: w.task("777")),
    ("Task/Detail: outputs is an object", "Task/Detail", task_item(outputs={"0": {}}), lambda w: w.task("777")),
    (
        "Task/Detail: fields of the wrong kind",
        "Task/Detail",
        task_item(pexit=[], totalcost="1e999", elapsedseconds="NaN", status=5),
        lambda w: w.task("777"),
    ),
    (
        "Task/Detail: output fields of the wrong kind",
        "Task/Detail",
        task_item(outputs=[{"name": [], "url": {}, "size": "1e999"}]),
        lambda w: w.task("777"),
    ),
    ("Task/Cancel: the answer is a list", "Task/Cancel", [], lambda w: w.cancel("777")),
    ("File/Upload: list is an object", "File/Upload", {**OK, "list": {"0": {}}}, lambda w: w.upload(b"hello")),
    ("File/Upload: no URL", "File/Upload", {**OK, "list": [{"id": "1", "size": "NaN"}]}, lambda w: w.upload(b"hello")),
    ("File/FolderCreate: list is text", "File/FolderCreate", {**OK, "list": "x"}, lambda w: w.create_folder("f")),
]


@pytest.mark.parametrize(("path", "body", "call"), [row[1:] for row in WIRO_ROWS], ids=[row[0] for row in WIRO_ROWS])
def test_wiro_endpoints_give_a_result_or_a_wiro_error(emu: Any, path: str, body: Any, call: Callable[[Wiro], Any]) -> None:
    emu.faults.respond(path, body=body, times=5)
    with make_client(emu, max_retries=0) as wiro:
        try:
            result = call(wiro)
        except WiroError as exc:
            assert path in str(exc) or "Wiro API" in str(exc) or "wiro/sloppy" in str(exc), str(exc)
        else:
            repr(result)  # a result must also show without raising


def test_a_sloppy_model_definition_still_validates(emu: Any) -> None:
    emu.faults.respond("Tool/Detail", body=number_param(maxvalue="1e999", incrementby="abc", minvalue="NaN"))
    with make_client(emu) as wiro:
        model = wiro.model("wiro/sloppy")
    steps = model.parameter("steps")
    assert steps.max is None and steps.step is None and steps.min is None  # absent, not infinite
    assert steps.describe()


def test_a_broken_container_names_the_endpoint_and_field(emu: Any) -> None:
    emu.faults.respond("Task/Detail", body={**OK, "tasklist": {"0": {}}})
    with make_client(emu, max_retries=0) as wiro, pytest.raises(WiroError) as info:
        wiro.task("777")
    assert "Task/Detail" in str(info.value) and "'tasklist'" in str(info.value)


DIFY_ROWS: list[tuple[str, str, Any, Callable[[WbotChat], Any]]] = [
    ("conversations: data is an object", "dify:conversations", {"data": {"a": 1}}, lambda c: c.conversations()),
    ("conversations: the answer is a list", "dify:conversations", [1], lambda c: c.conversations()),
    ("messages: data is text", "dify:messages", {"data": "x", "has_more": "yes"}, lambda c: c.messages("c-1")),
    (
        "messages: items of the wrong kind",
        "dify:messages",
        {"data": [{"answer": [], "agent_thoughts": {}, "created_at": "x"}]},
        lambda c: c.messages("c-1"),
    ),
    ("parameters: the answer is a list", "dify:parameters", [], lambda c: c.parameters()),
    ("info: the answer is text", "dify:info", "hello", lambda c: c.info()),
    ("suggested: data is an object", "dify:messages", {"data": {"q": 1}}, lambda c: c.suggested("m-1")),
    ("files/upload: no id", "dify:files/upload", {"name": "x"}, lambda c: c.upload(b"hello", "a.txt")),
    ("chat-messages: a blocking answer that is a list", "dify:chat-messages", [1, 2], lambda c: c.send("hi")),
    (
        "chat-messages: events of the wrong kind",
        "dify:chat-messages",
        'data: [1]\n\ndata: "x"\n\ndata: {"event": "message_end", "metadata": [], "files": {}}\n\n',
        lambda c: c.send("hi"),
    ),
]


@pytest.mark.parametrize(("path", "body", "call"), [row[1:] for row in DIFY_ROWS], ids=[row[0] for row in DIFY_ROWS])
def test_dify_endpoints_give_a_result_or_a_wiro_error(emu: Any, path: str, body: Any, call: Callable[[WbotChat], Any]) -> None:
    content_type = "text/event-stream" if isinstance(body, str) and body.startswith("data:") else "application/json"
    emu.faults.respond(path, body=body, content_type=content_type, times=5)
    chat = WbotChat(api_key=emu.dify_chat_key, base_url=emu.dify_url, max_retries=0)
    try:
        try:
            result = call(chat)
        except WiroError:
            pass
        else:
            repr(result)
    finally:
        chat.close()


def test_numbers_from_the_wire() -> None:
    assert to_number("256") == 256 and to_number("4.5") == 4.5 and to_number(3) == 3
    for junk in ("", "abc", "NaN", "nan", "1e999", "-inf", float("nan"), float("inf"), True, [], {}, None):
        assert to_number(junk) is None, junk


def test_socket_frames_of_the_wrong_kind_do_not_stop_a_task(emu: Any) -> None:
    async def main() -> bool:
        from wiro_jupyter._task import TaskState

        state = TaskState(token="t")
        for frame in (
            {"type": "task_output", "message": [1, 2]},
            {"type": "task_output", "message": {"answer": {"x": 1}, "thinking": 5}},
            {"type": "task_cost", "cumulativeCost": "1e999"},
            {"type": "task_postprocess_end", "message": {"not": "a list"}},
            {"type": ["task_start"], "message": None},
        ):
            state.event_from_frame(frame)
        return state.cost is None

    assert asyncio.run(main())
