"""Wire-level tests of the emulator, with raw httpx and websockets only (never the package's client).

The emulator must answer like the real Wiro API (docs/protocol.md, "Wiro §n") and Dify API ("Dify §n");
these tests pin the raw field names, string-typed numbers, socket frames, quirks, keys and fault knobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import queue
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from imports import first_cycle, package_imports
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from wiro_jupyter.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("task_postprocess_end", "task_cancel")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")


# `emulator` (session-scoped `Emulator(stage_delay=0)`) and `emu` (the same, with fault knobs,
# queue and stage delay reset around each test) come from tests/conftest.py.


@pytest.fixture(scope="session")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api_url, trust_env=False, timeout=10,
                      headers={"x-api-key": emulator.api_key}) as client:
        yield client


def post(http: httpx.Client, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    response = http.post(path, json=body if body is not None else {}, **kwargs)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def run(http: httpx.Client, model: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = post(http, f"/Run/{model}", body)
    assert answer["result"] is True, answer
    return answer


def detail(http: httpx.Client, **key: str) -> dict[str, Any]:
    answer = post(http, "/Task/Detail", key)
    assert answer["result"] is True and answer["total"] == "1", answer
    task: dict[str, Any] = answer["tasklist"][0]
    return task


@contextlib.contextmanager
def socket(emu: Emulator) -> Iterator[ClientConnection]:
    with connect(emu.socket_url, proxy=None, open_timeout=5, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=5)) == {"type": "connected", "version": "1.0"}  # welcome frame first
        yield ws


def listen(emu: Emulator, ws: ClientConnection, token: str) -> None:
    ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
    assert emu.wait_registered(token, timeout=5)  # there is no ack on the wire


def frames_until(ws: ClientConnection, last: tuple[str, ...] = TERMINAL, token: str | None = None
                 ) -> list[dict[str, Any]]:
    frames = []
    while True:
        raw = ws.recv(timeout=10)
        if isinstance(raw, bytes):
            frames.append({"type": "<binary>", "data": raw})
            continue
        frame = json.loads(raw)
        if token is None or frame.get("tasktoken") == token:
            frames.append(frame)
            if frame["type"] in last:
                return frames


def queued_run(emu: Emulator, http: httpx.Client, ws: ClientConnection, model: str, body: dict[str, Any]) -> str:
    """Run with the queue paused, listen, then resume: the socket sees every frame after task_queue."""
    emu.pause_queue()
    token: str = run(http, model, body)["socketaccesstoken"]
    listen(emu, ws, token)
    emu.resume_queue()
    return token


def signed(key: str, secret: str, nonce: str) -> dict[str, str]:
    signature = hmac.new(key.encode(), (secret + nonce).encode(), hashlib.sha256).hexdigest()
    return {"x-api-key": key, "x-nonce": nonce, "x-signature": signature}


# --- auth and routing ----------------------------------------------------------------------------


def test_key_only_project_and_unknown_keys(emu: Emulator, http: httpx.Client) -> None:
    assert post(http, "/Tool/List", {"limit": "1"})["result"] is True
    for headers in ({}, {"x-api-key": "nope"}):
        response = httpx.post(f"{emu.api_url}/Tool/List", json={}, headers=headers, trust_env=False)
        assert response.status_code == 401
        assert response.json() == {"result": False,
                                   "errors": [{"code": 0, "message": "Project authorization is not founded."}]}


def test_signature_project(emu: Emulator) -> None:
    url = f"{emu.api_url}/Tool/List"
    with httpx.Client(trust_env=False) as client:
        missing = client.post(url, json={}, headers={"x-api-key": emu.signature_key})
        assert missing.status_code == 401
        assert "x-signature and x-nonce headers are required" in missing.json()["errors"][0]["message"]
        good = signed(emu.signature_key, emu.signature_secret, "1700000000001")
        assert client.post(url, json={}, headers=good).json()["result"] is True
        replay = client.post(url, json={}, headers=good)
        assert replay.status_code == 401  # nonce reuse
        wrong = signed(emu.signature_key, "not-the-secret", "1700000000002")
        answer = client.post(url, json={}, headers=wrong)
        assert answer.status_code == 401
        assert answer.json()["errors"] == [{"code": 0, "message": "Project authorization is not valid."}]


def test_signature_vector_matches_research() -> None:
    # Vectors from the official SDK tests (docs/protocol.md, Wiro §1): the test helper itself must be right.
    assert signed("test-api-key", "test-secret", "1700000000000")["x-signature"] == (
        "2d99fa1b6934f66a712785d1b402997e1b13d9d7cd5e0085211dac133ae4a8ef")


def test_revoke_context_manager_and_output_ttl() -> None:
    with Emulator(stage_delay=0, api_key="second-key-1234567890", output_ttl=0) as other:
        assert other.api_key == "second-key-1234567890"
        with httpx.Client(base_url=other.api_url, trust_env=False, headers={"x-api-key": other.api_key}) as client:
            token = run(client, "wiro/text-to-image", {"prompt": "ttl"})["socketaccesstoken"]
            other.wait_task(token)
            output = detail(client, tasktoken=token)["outputs"][0]
            assert output["expiretime"] is not None
            assert client.get(output["url"]).status_code == 404  # expired at once
            other.revoke(other.api_key)
            response = client.post("/Tool/List", json={})
            assert response.status_code == 401
            assert response.json()["errors"][0]["message"] == "Project authorization is not founded."
    assert not other.running


def test_unknown_route(http: httpx.Client) -> None:
    for method, path in (("POST", "/Nope/Nothing"), ("GET", "/Tool/List"), ("POST", "/Run/only-owner")):
        response = http.request(method, path, json={})
        assert response.status_code == 404
        assert response.json() == {"result": False, "errors": [{"code": 0, "message": "Error parsing url."}]}


# --- catalogue -----------------------------------------------------------------------------------


def test_tool_list_types_search_categories_paging(http: httpx.Client) -> None:
    everything = post(http, "/Tool/List", {"start": "0", "limit": "100"})
    assert set(everything) == {"result", "errors", "total", "tool"}
    assert isinstance(everything["total"], int) and everything["total"] == len(everything["tool"]) >= 11
    item = next(t for t in everything["tool"] if t["cleanslugproject"] == "text-to-image")
    assert item["slugproject"] == "Text To Image" and item["cleanslugowner"] == "wiro"
    assert isinstance(item["id"], str) and isinstance(item["marketplace"], int)
    assert item["averagepoint"] == "5.00" and item["commentcount"] == "0"
    assert isinstance(item["dynamicprice"], str)
    assert json.loads(item["dynamicprice"])[0]["priceMethod"] in ("cpr", "cpo")
    stat = item["taskstat"]
    assert isinstance(stat["runcount"], int) and all(isinstance(stat[k], str) for k in
                                                     ("successcount", "errorcount", "lastruntime"))
    page = post(http, "/Tool/List", {"start": "2", "limit": "3"})
    assert page["total"] == everything["total"]
    assert [t["id"] for t in page["tool"]] == [t["id"] for t in everything["tool"][2:5]]
    assert {t["cleanslugproject"] for t in post(http, "/Tool/List", {"search": "LLM"})["tool"]} == {"chat-llm", "stream-llm"}
    chat = post(http, "/Tool/List", {"categories": ["chat", "nonexistent"], "limit": 20})
    assert [t["cleanslugproject"] for t in chat["tool"]] == ["chat-llm"]
    assert post(http, "/Tool/List", {"slugowner": "someone-else"})["total"] == 0
    assert http.get(item["image"]).headers["content-type"] == "image/jpeg"


def test_tool_detail_raw_field_names(http: httpx.Client) -> None:
    answer = post(http, "/Tool/Detail", {"slugowner": "WIRO", "slugproject": "Text To Image"})  # raw slug accepted
    assert answer["result"] is True and len(answer["tool"]) == 1
    tool = answer["tool"][0]
    assert tool["readme"].startswith("<p>") and tool["samples"] == [] and isinstance(tool["inspire"], list)
    groups = tool["parameters"]
    assert [g["title"] for g in groups] == ["Inputs", "Advanced"] and all("subtitle" in g for g in groups)
    items = {i["id"]: i for g in groups for i in g["items"]}
    width = items["width"]
    assert (width["minvalue"], width["maxvalue"], width["incrementby"]) == ("256", "1024", "64")
    assert width["required"] is False and width["defaultvalue"] == 512
    assert items["guidance"]["minvalue"] == "1.5" and items["guidance"]["defaultvalue"] == 4.5
    assert items["prompt"]["required"] is True and items["steps"]["advanced"] is True
    assert {"text": "None", "value": ""} in items["style"]["options"]
    assert not any(k in width for k in ("min", "max", "default", "step"))  # SDK spellings never appear

    sink = post(http, "/Tool/Detail", {"slugowner": "wiro", "slugproject": "kitchen-sink"})["tool"][0]
    sink_items = [i for g in sink["parameters"] for i in g["items"]]
    assert {i["type"] for i in sink_items} >= {"text", "textarea", "select", "selectwithcover", "range", "number",
                                                "float", "checkbox", "fileinput", "multifileinput",
                                                "combinefileinput"}
    assert {"inputImageUrl", "galleryUrl"} <= {i["id"] for i in sink_items}
    assert any(i["advanced"] for i in sink_items) and len(sink["parameters"]) == 3
    blend = post(http, "/Tool/Detail", {"slugowner": "wiro", "slugproject": "image-blend"})["tool"][0]
    assert blend["parameters"][0]["items"][0]["maxinputlenght"] == 3

    missing = post(http, "/Tool/Detail", {"slugowner": "wiro", "slugproject": "nope"})
    assert missing == {"result": False, "errors": [{"code": 1, "message": "slug-owner-project-not-exist"}]}


# --- run, validation, task detail ----------------------------------------------------------------


def test_run_json_and_task_detail(emu: Emulator, http: httpx.Client) -> None:
    started = run(http, "wiro/text-to-image", {"prompt": "a red fox", "samples": 2, "guidance": 5.5,
                                               "outputFormat": "jpeg", "seed": "7"})
    assert set(started) == {"result", "errors", "taskid", "socketaccesstoken"}
    assert started["taskid"].isdigit()
    token = started["socketaccesstoken"]
    assert len(token) == 30 and token.isalnum()
    emu.wait_task(started["taskid"])
    by_token, by_id = detail(http, tasktoken=token), detail(http, taskid=started["taskid"])
    assert by_token == by_id
    assert detail(http, socketaccesstoken=token)["id"] == started["taskid"]
    task = by_token
    assert task["status"] == "task_postprocess_end" and task["pexit"] == "0"
    assert task["parameters"] == {"prompt": "a red fox", "samples": "2", "guidance": "5.5",
                                  "outputFormat": "jpeg", "seed": "7"}
    for key in ("createtime", "starttime", "endtime", "postprocessendtime", "elapsedseconds", "totalcost", "size"):
        assert isinstance(task[key], str) and task[key] != "", key
    assert task["canceltime"] == "0" and float(task["totalcost"]) == pytest.approx(0.04)
    assert json.loads(task["categories"]) == ["text-to-image", "image-generation"]
    assert (task["modelslugowner"], task["modelslugproject"]) == ("wiro", "text-to-image")
    outputs = task["outputs"]
    assert [o["name"] for o in outputs] == ["0.jpg", "1.jpg"]
    first = outputs[0]
    assert len(first["id"]) == 32 and first["ispublic"] == 0 and first["expiretime"] is None
    assert first["contenttype"] == "image/jpeg" and first["foldercount"] == "0"
    image = http.get(first["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert str(len(image.content)) == first["size"] == image.headers["content-length"]
    assert image.content[:2] == b"\xff\xd8"
    assert sum(int(o["size"]) for o in outputs) == int(task["size"])

    assert post(http, "/Task/Detail", {"taskid": "999999"}) == {
        "result": False, "errors": [{"code": 1, "message": "There is no task yet."}]}


@pytest.mark.parametrize(("model", "body", "message"), [
    ("wiro/text-to-image", {"width": 512}, "Request parameter [prompt] required"),
    ("wiro/text-to-image", {"prompt": "x", "width": 2000}, "Request parameter [width] must be between 256 and 1024"),
    ("wiro/text-to-image", {"prompt": "x", "steps": "many"}, "Request parameter [steps] must be integer or float"),
    ("wiro/text-to-image", {"prompt": "x", "style": "cubism"}, "Request parameters are invalid."),
    ("wiro/image-to-image", {"effect": "invert"}, "Request files [inputImage] required"),
    ("wiro/image-blend", {"inputImages": ["http://a/1.png", "http://a/2.png", "http://a/3.png", "http://a/4.png"]},
     "Request parameters are invalid."),
])
def test_run_validation(http: httpx.Client, model: str, body: dict[str, Any], message: str) -> None:
    assert post(http, f"/Run/{model}", body) == {"result": False, "errors": [{"code": 0, "message": message}]}


def test_run_unknown_model(http: httpx.Client) -> None:
    answer = post(http, "/Run/wiro/does-not-exist", {"prompt": "x"})
    assert answer == {"result": False, "errors": [{"code": 1, "message": "slug-owner-project-not-exist"}]}


def test_run_multipart_upload_and_url_companion(emu: Emulator, http: httpx.Client) -> None:
    response = http.post("/Run/wiro/image-to-image", data={"effect": "grayscale", "strength": "0.5"},
                         files={"inputImage": ("photo.png", PNG, "image/png")})
    started = response.json()
    assert started["result"] is True, started
    emu.wait_task(started["taskid"])
    task = detail(http, taskid=started["taskid"])
    assert task["pexit"] == "0" and task["parameters"]["strength"] == "0.5"
    uploaded = task["parameters"]["inputImage"]
    assert uploaded.startswith(f"{emu.api_url}/File/") and "/inputImage-" in uploaded and uploaded.endswith(".png")
    assert http.get(uploaded).content == PNG

    # The companion `inputImageUrl` (its own text parameter), pointing back at the emulator: read locally.
    again = run(http, "wiro/image-to-image", {"inputImageUrl": uploaded, "effect": "posterize"})
    emu.wait_task(again["taskid"])
    task = detail(http, taskid=again["taskid"])
    assert task["pexit"] == "0" and task["parameters"]["inputImageUrl"] == uploaded
    assert emu.tasks[again["taskid"]].inputs["inputImage"][0].data == PNG
    # A foreign URL is only recorded (no network); the model still runs.
    remote = run(http, "wiro/image-to-image", {"inputImageUrl": "https://example.invalid/cat.png"})
    assert emu.wait_task(remote["taskid"])["pexit"] == "0"


def test_combinefileinput_url_array_and_repeated_multipart(emu: Emulator, http: httpx.Client) -> None:
    urls = ["https://example.invalid/a.png", "https://example.invalid/b.png"]
    started = run(http, "wiro/image-blend", {"inputImages": urls, "mode": "tile",
                                             "referenceImagesUrl": "https://example.invalid/r.png"})
    emu.wait_task(started["taskid"])
    task = detail(http, taskid=started["taskid"])
    assert task["pexit"] == "0" and task["parameters"]["inputImages"] == urls
    assert len(emu.tasks[started["taskid"]].inputs["referenceImages"]) == 1

    # multipart: the same field repeated, mixing a file and a URL string (Wiro §4.1)
    response = http.post("/Run/wiro/image-blend", data={"inputImages": urls[0], "mode": "average"},
                         files=[("inputImages", ("one.png", PNG, "image/png")),
                                ("referenceImages", ("r1.png", PNG, "image/png")),
                                ("referenceImages", ("r2.png", PNG, "image/png"))])
    started = response.json()
    assert started["result"] is True, started
    record = emu.wait_task(started["taskid"])
    assert record.pexit == "0" and len(record.inputs["inputImages"]) == 2
    assert len(record.inputs["referenceImages"]) == 2
    echoed = detail(http, taskid=started["taskid"])["parameters"]
    assert echoed["inputImages"][0].startswith(f"{emu.api_url}/File/") and urls[0] in echoed["inputImages"]


def test_task_list(emu: Emulator, http: httpx.Client) -> None:
    started = run(http, "wiro/kitchen-sink", {"prompt": "listed", "mode": "fast"})
    emu.wait_task(started["taskid"])
    answer = post(http, "/Task/List", {"modelName": "wiro/kitchen-sink", "limit": "5"})
    assert isinstance(answer["total"], str) and answer["tasklist"][0]["id"] == started["taskid"]


# --- the socket ----------------------------------------------------------------------------------


def test_socket_full_sequence_for_text_to_image(emu: Emulator, http: httpx.Client) -> None:
    with socket(emu) as ws:
        token = queued_run(emu, http, ws, "wiro/text-to-image", {"prompt": "sequence", "steps": 10})
        ws.send(json.dumps({"type": "task_info", "tasktoken": token}))  # a duplicate is ignored
        frames = frames_until(ws)
    kinds = [f["type"] for f in frames]
    lifecycle = [k for k in kinds if k not in ("task_output", "task_output_full")]
    assert lifecycle == ["task_accept", "task_assign", "task_preprocess_start", "task_preprocess_end", "task_start",
                         "task_end", "task_postprocess_start", "task_postprocess_end"]
    # (one copy of each lifecycle frame despite the duplicate task_info: checked by the equality above)
    assert kinds.index("task_start") < kinds.index("task_output") < kinds.index("task_end")
    for frame in frames:
        assert set(frame) == {"type", "id", "tasktoken", "message", "result"} and frame["tasktoken"] == token
    assert frames[0]["message"] is None and frames[0]["result"] is True
    outputs = [f["message"] for f in frames if f["type"] == "task_output"]
    as_strings = [json.loads(m) for m in outputs if isinstance(m, str) and m.startswith("{")]
    as_objects = [m for m in outputs if isinstance(m, dict)]
    assert as_strings and as_objects  # the JSON-encoded-string quirk, and plain objects
    for progress in as_strings + as_objects:
        assert progress["type"] == "progressGenerate" and all(isinstance(v, str) for v in progress.values())
    assert any(isinstance(m, str) and not m.startswith("{") for m in outputs)  # plain log lines too
    final = frames[-1]["message"]
    assert final == detail(http, tasktoken=token)["outputs"] and final[0]["name"] == "0.png"


def test_socket_demultiplexes_and_never_replays(emu: Emulator, http: httpx.Client) -> None:
    finished = run(http, "wiro/kitchen-sink", {"prompt": "done already", "mode": "fast"})
    emu.wait_task(finished["taskid"])
    with socket(emu) as ws:
        listen(emu, ws, finished["socketaccesstoken"])  # late: nothing is replayed
        ws.send(json.dumps({"type": "task_info", "tasktoken": "unknown-token"}))  # ignored
        emu.pause_queue()
        first = run(http, "wiro/kitchen-sink", {"prompt": "one", "mode": "fast"})["socketaccesstoken"]
        second = run(http, "wiro/text-to-speech", {"text": "two"})["socketaccesstoken"]
        listen(emu, ws, first)
        listen(emu, ws, second)
        emu.resume_queue()
        seen: dict[str, list[str]] = {}
        while not all(seen.get(t, [""])[-1] == "task_postprocess_end" for t in (first, second)):
            frame = json.loads(ws.recv(timeout=10))
            seen.setdefault(frame["tasktoken"], []).append(frame["type"])
    assert set(seen) == {first, second}
    assert all(kinds[0] == "task_accept" for kinds in seen.values())


def test_llm_cumulative_snapshots_and_raw_output(emu: Emulator, http: httpx.Client) -> None:
    prompt = "Say hi <script>alert('x')</script> & <b>bold</b>"
    with socket(emu) as ws:
        token = queued_run(emu, http, ws, "wiro/chat-llm", {"prompt": prompt})
        frames = frames_until(ws)
    snapshots = [f["message"] for f in frames if f["type"] == "task_output"]
    assert 8 <= len(snapshots) <= 20
    assert snapshots[0]["type"] == "thinking" and snapshots[0]["isThinking"] is True
    assert snapshots[-1]["type"] == "answer" and snapshots[-1]["isThinking"] is False
    previous_answer = previous_thinking = ""
    for snap in snapshots:
        assert set(snap) >= {"type", "raw", "thinking", "answer", "isThinking", "speed", "speedType", "elapsedTime"}
        answer, thinking = "".join(snap["answer"]), "".join(snap["thinking"])
        assert answer.startswith(previous_answer) and thinking.startswith(previous_thinking)  # cumulative
        previous_answer, previous_thinking = answer, thinking
    assert len({json.dumps(s) for s in snapshots}) == len(snapshots)  # every snapshot grows
    full = next(f["message"] for f in frames if f["type"] == "task_output_full")
    assert "".join(full["answer"]) == previous_answer and set(full) == {"raw", "thinking", "answer"}
    task = detail(http, tasktoken=token)
    assert task["debugoutput"] == previous_answer and prompt in task["debugoutput"]
    assert "## " in previous_answer and "\n- " in previous_answer and "```" in previous_answer
    assert task["outputs"] == [{"contenttype": "raw", "content": {"prompt": prompt, "raw": full["raw"],
                                                                  "thinking": full["thinking"],
                                                                  "answer": full["answer"]}}]
    assert frames[-1]["message"] == task["outputs"]


def test_llm_session_memory(emu: Emulator, http: httpx.Client) -> None:
    session = "550e8400-e29b-41d4-a716-446655440000"
    first = run(http, "wiro/chat-llm", {"prompt": "My name is Ada.", "session_id": session, "reasoning": False})
    emu.wait_task(first["taskid"])
    second = run(http, "wiro/chat-llm", {"prompt": "What is my name?", "session_id": session})
    answer = emu.wait_task(second["taskid"]).debugoutput
    assert "I remember 1 earlier turn" in answer and 'Earlier you said: "My name is Ada."' in answer
    fresh = run(http, "wiro/chat-llm", {"prompt": "Hello", "session_id": "another-session"})
    assert "I remember 0 earlier turn" in emu.wait_task(fresh["taskid"]).debugoutput


def test_cancel_while_queued(emu: Emulator, http: httpx.Client) -> None:
    emu.pause_queue()
    started = run(http, "wiro/text-to-image", {"prompt": "never"})
    assert detail(http, taskid=started["taskid"])["status"] == "task_queue"
    killed = post(http, "/Task/Kill", {"taskid": started["taskid"]})
    assert killed["result"] is False and killed["errors"][0]["code"] == 1
    cancelled = post(http, "/Task/Cancel", {"taskid": started["taskid"]})
    assert cancelled["result"] is True and cancelled["tasklist"][0]["status"] == "task_cancel"
    task = detail(http, taskid=started["taskid"])
    assert task["status"] == "task_cancel" and task["canceltime"] != "0" and task["outputs"] == []
    again = post(http, "/Task/Cancel", {"tasktoken": started["socketaccesstoken"]})
    assert again["result"] is False and again["errors"][0]["code"] == 1
    emu.resume_queue()


def test_kill_while_running(emu: Emulator, http: httpx.Client) -> None:
    with socket(emu) as ws:
        token = queued_run(emu, http, ws, "wiro/slow", {"seconds": 600})
        frames_until(ws, last=("task_output",))  # it is running and reporting progress
        running = post(http, "/Task/Cancel", {"socketaccesstoken": token})
        assert running["result"] is False and "only queued" in running["errors"][0]["message"].lower()
        killed = post(http, "/Task/Kill", {"socketaccesstoken": token})
        assert killed["result"] is True and killed["tasklist"][0]["status"] == "task_cancel"
        assert frames_until(ws)[-1]["type"] == "task_cancel"
    task = detail(http, tasktoken=token)
    assert task["status"] == "task_cancel" and task["pexit"] not in (None, "0")
    assert "killed" in task["debugerror"] and task["outputs"] == [] and task["totalcost"] == "0"
    assert post(http, "/Task/Kill", {"tasktoken": token})["result"] is False


def test_failing_model(emu: Emulator, http: httpx.Client) -> None:
    with socket(emu) as ws:
        token = queued_run(emu, http, ws, "wiro/always-fails", {"prompt": "boom"})
        frames = frames_until(ws)
    kinds = [f["type"] for f in frames]
    errors = [f["message"] for f in frames if f["type"] == "task_error"]
    assert errors and all(isinstance(m, str) for m in errors)
    assert kinds.index("task_error") < kinds.index("task_end")  # task_error is interim, not terminal
    assert kinds[-3:] == ["task_end", "task_postprocess_start", "task_postprocess_end"]
    assert frames[-1]["message"] == []
    task = detail(http, tasktoken=token)
    assert task["pexit"] == "1" and task["outputs"] == [] and task["totalcost"] == "0"
    assert "RuntimeError: synthetic failure" in task["debugerror"]


def test_realtime_echo_round_trip(emu: Emulator, http: httpx.Client) -> None:
    token = run(http, "wiro/realtime-echo", {"voice": "marin"})["socketaccesstoken"]
    pcm = bytes(range(256)) * 37 + b"\x00\x10"  # 9 474 bytes of PCM16
    with socket(emu) as ws:
        listen(emu, ws, token)
        assert frames_until(ws, last=("task_stream_ready",))[-1]["type"] == "task_stream_ready"
        ws.send(token.encode() + b"|" + pcm)
        turn = frames_until(ws, last=("task_cost",))
        binary = [f["data"] for f in turn if f["type"] == "<binary>"]
        assert binary == [token.encode() + b"|" + pcm]
        texts = [f["message"] for f in turn if f["type"] == "task_output"]
        assert texts[0].startswith("TRANSCRIPT_USER:") and texts[1].startswith("TRANSCRIPT_AI:")
        assert [f["type"] for f in turn][-2:] == ["task_stream_end", "task_cost"]
        assert turn[-1]["turnCost"] == pytest.approx(0.002) and turn[-1]["cumulativeCost"] == pytest.approx(0.002)
        ws.send(json.dumps({"type": "task_session_end", "tasktoken": token}))
        end = frames_until(ws)
    assert [f["type"] for f in end][-3:] == ["task_end", "task_postprocess_start", "task_postprocess_end"]
    assert end[-1]["message"] == []
    task = detail(http, tasktoken=token)
    assert task["pexit"] == "0" and task["size"] == "0" and float(task["totalcost"]) == pytest.approx(0.002)


# --- outputs of the other models -----------------------------------------------------------------


def test_media_models(emu: Emulator, http: httpx.Client) -> None:
    speech = run(http, "wiro/text-to-speech", {"text": "hello there", "speed": "1.5"})
    animate = run(http, "wiro/animate", {"prompt": "ball", "frames": 6})
    sink = run(http, "wiro/kitchen-sink", {"prompt": "echo", "mode": "", "enabled": True, "ratio": "0.3",
                                           "mixed": ["https://example.invalid/m.png"]})
    wav = emu.wait_task(speech["taskid"]).outputs[0]
    assert (wav["name"], wav["contenttype"]) == ("output.wav", "audio/wav")
    with wave.open(io.BytesIO(http.get(wav["url"]).content)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 24000)
        assert audio.getnframes() > 0
    names = {o["name"]: o["contenttype"] for o in emu.wait_task(animate["taskid"]).outputs}
    assert names == {"output.gif": "image/gif", "output.webp": "image/webp"}
    outputs = emu.wait_task(sink["taskid"]).outputs
    assert [o["contenttype"] for o in outputs] == ["application/json", "image/png"]
    echoed = http.get(outputs[0]["url"]).json()
    assert echoed["prompt"] == "echo" and echoed["enabled"] == "true" and echoed["mixed"] == [
        "https://example.invalid/m.png"]


def test_big_file_is_streamed_with_the_right_size(emu: Emulator, http: httpx.Client) -> None:
    started = run(http, "wiro/big-file", {"megabytes": "3"})
    output = emu.wait_task(started["taskid"]).outputs[0]
    size = 3 * 1024 * 1024
    assert output["size"] == str(size) and output["contenttype"] == "application/octet-stream"
    digest, received = hashlib.sha256(), 0
    with http.stream("GET", output["url"]) as response:
        assert response.headers["content-length"] == str(size)
        for chunk in response.iter_bytes():
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    ranged = http.get(output["url"], headers={"Range": "bytes=1000-1999"})
    assert ranged.status_code == 206 and len(ranged.content) == 1000
    assert ranged.headers["content-range"] == f"bytes 1000-1999/{size}"
    assert http.get(output["url"], headers={"Range": "bytes=1000-1999"}).content == ranged.content  # deterministic


def test_folder_create_and_upload(emu: Emulator, http: httpx.Client) -> None:
    folder = post(http, "/File/FolderCreate", {"name": "training-data", "parentId": None})
    item = folder["list"][0]
    assert set(item) == {"id", "name", "parentid", "size", "contenttype", "addedtime"} and item["size"] == "0"
    uploaded = http.post("/File/Upload", data={"folderid": item["id"]},
                         files={"file": ("notes.txt", b"hello file", "text/plain")}).json()
    entry = uploaded["list"][0]
    assert uploaded["result"] is True and entry["parentid"] == item["id"] and entry["size"] == "10"
    assert set(entry) == {"id", "name", "contenttype", "size", "parentid", "url", "addedtime", "accesskey"}
    served = httpx.get(entry["url"], trust_env=False)  # no auth needed for files
    assert served.content == b"hello file" and served.headers["content-type"].startswith("text/plain")
    emu.state.max_upload_bytes = 5
    try:
        too_big = http.post("/File/Upload", files={"file": ("big.bin", b"123456", "application/octet-stream")})
        assert too_big.status_code == 200 and too_big.json()["result"] is False
    finally:
        emu.state.max_upload_bytes = 100 * 1024 * 1024


def test_callback_url_receives_the_final_task(emu: Emulator, http: httpx.Client) -> None:
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.put(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        started = run(http, "wiro/kitchen-sink", {"prompt": "call me", "mode": "fast", "callbackUrl": url})
        payload = received.get(timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    task = payload["tasklist"][0]
    assert task["id"] == started["taskid"] and task["status"] == "task_postprocess_end" and task["callbackurl"] == url


# --- fault knobs ---------------------------------------------------------------------------------


def test_fault_http_error(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.http_error(path="Tool/List", status=429, times=2, retry_after=1)
    for _ in range(2):
        limited = http.post("/Tool/List", json={})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        assert limited.json() == {"result": False, "errors": [{"code": 0, "message": "Too many requests"}]}
    assert http.post("/Tool/List", json={}).status_code == 200
    emu.faults.http_error(path="Tool/List", status=502)
    gateway = http.post("/Tool/List", json={})
    assert gateway.status_code == 502 and gateway.headers["content-type"].startswith("text/html")
    emu.faults.http_error(path="Tool/List", status=503, times=5)
    emu.faults.reset()
    assert http.post("/Tool/List", json={}).status_code == 200


def test_fault_business_error(http: httpx.Client, emu: Emulator) -> None:
    emu.faults.business_error(path="Run", code=96, message="You have reached your concurrent task limit.")
    answer = http.post("/Run/wiro/kitchen-sink", json={"prompt": "x", "mode": "fast"})
    assert answer.status_code == 200 and answer.json() == {
        "result": False, "errors": [{"code": 96, "message": "You have reached your concurrent task limit."}]}
    assert run(http, "wiro/kitchen-sink", {"prompt": "x", "mode": "fast"})["result"] is True


def test_fault_drop_socket(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.drop_socket(after_frames=3)
    with socket(emu) as ws:
        token = queued_run(emu, http, ws, "wiro/text-to-image", {"prompt": "dropped"})
        received = []
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                received.append(json.loads(ws.recv(timeout=10))["type"])
    assert received == ["task_accept", "task_assign", "task_preprocess_start"]
    assert closed.value.rcvd is None  # no close frame: an abrupt cut
    assert emu.wait_task(token).pexit == "0"  # the task itself carries on
    with socket(emu) as ws:  # one-shot: the next connection is fine
        token = queued_run(emu, http, ws, "wiro/kitchen-sink", {"prompt": "fine", "mode": "fast"})
        assert frames_until(ws)[-1]["type"] == "task_postprocess_end"


def test_fault_silent_socket(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.silent_socket(True)
    with socket(emu) as ws:  # `connected` still arrives
        token = queued_run(emu, http, ws, "wiro/kitchen-sink", {"prompt": "quiet", "mode": "fast"})
        assert emu.wait_task(token).status == "task_postprocess_end"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
    assert detail(http, tasktoken=token)["pexit"] == "0"


def test_fault_refuse_socket_and_stats(emu: Emulator, http: httpx.Client) -> None:
    opened, refused = emu.stats.socket_connections, emu.stats.sockets_refused
    emu.faults.refuse_socket(times=1)
    with pytest.raises(InvalidStatus) as rejected, connect(emu.socket_url, proxy=None, open_timeout=5):
        pass
    assert rejected.value.response.status_code == 403
    with socket(emu):
        pass
    assert (emu.stats.socket_connections, emu.stats.sockets_refused) == (opened + 1, refused + 1)
    before = emu.stats.count("Tool/Detail"), emu.stats.count("Run"), emu.stats.count("Run/wiro/slow")
    post(http, "/Tool/Detail", {"slugowner": "wiro", "slugproject": "slow"})
    post(http, "/Run/wiro/slow", {"prompt": "counted", "seconds": "0"})
    after = emu.stats.count("Tool/Detail"), emu.stats.count("Run"), emu.stats.count("Run/wiro/slow")
    assert after == (before[0] + 1, before[1] + 1, before[2] + 1)  # this test's own requests, each once


def test_fault_respond_sends_exactly_the_canned_answer(emu: Emulator, http: httpx.Client) -> None:
    odd = {"result": True, "errors": [], "tool": [{"parameters": [{"title": "Inputs", "items": [
        {"id": "n", "type": "number", "minvalue": "0", "maxvalue": "1e999"}]}]}]}
    emu.faults.respond("Tool/Detail", body=odd, times=2)
    for _ in range(2):
        canned = http.post("/Tool/Detail", json={"slugowner": "wiro", "slugproject": "slow"})
        assert canned.status_code == 200 and canned.json() == odd
        assert canned.headers["content-type"] == "application/json"
    assert post(http, "/Tool/Detail", {"slugowner": "wiro", "slugproject": "slow"})["tool"][0]["title"] == "Slow"

    line = "data: " + "x" * 200_000 + "\n\n"
    emu.faults.respond("dify:chat-messages", status=201, body=line, content_type="text/event-stream",
                       headers={"X-Test": "canned"})
    raw = httpx.post(emu.dify_url + "/chat-messages", json={}, trust_env=False)  # before auth, like a proxy
    assert (raw.status_code, raw.text, raw.headers["x-test"]) == (201, line, "canned")
    assert raw.headers["content-type"] == "text/event-stream"
    emu.faults.respond("Task/Detail", body=b"\xff\x00not json", content_type="application/octet-stream")
    assert http.post("/Task/Detail", json={"taskid": "1"}).content == b"\xff\x00not json"


def test_fault_redirect(emu: Emulator, http: httpx.Client) -> None:
    target = f"{emu.api_url}/Tool/List"
    emu.faults.redirect("Task/Detail", target, times=2)
    for _ in range(2):
        moved = http.post("/Task/Detail", json={"taskid": "1"})
        assert (moved.status_code, moved.headers["location"], moved.content) == (307, target, b"")
    assert http.post("/Task/Detail", json={"taskid": "1"}).json()["errors"][0]["code"] == 1  # used up
    emu.faults.redirect("dify:info", "https://elsewhere.invalid/v1/info", status=302)
    moved = httpx.get(emu.dify_url + "/info", headers={"Authorization": f"Bearer {emu.dify_chat_key}"}, trust_env=False)
    assert (moved.status_code, moved.headers["location"]) == (302, "https://elsewhere.invalid/v1/info")
    with pytest.raises(ValueError):
        emu.faults.redirect("Run", target, status=200)


def test_fault_retry_after_verbatim_and_the_path_rule(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.http_error("Tool/List", 503, retry_after="soon")
    soon = http.post("/Tool/List", json={})
    assert soon.status_code == 503 and soon.headers["retry-after"] == "soon" and "<html>" in soon.text
    emu.faults.http_error("Tool/List", 429, retry_after=1.5)
    assert http.post("/Tool/List", json={}).headers["retry-after"] == "1.5"

    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    emu.faults.http_error("dify:chat-messages", 429, retry_after=date)
    headers = {"Authorization": f"Bearer {emu.dify_chat_key}"}
    limited = httpx.post(emu.dify_url + "/chat-messages", json={}, headers=headers, trust_env=False)
    assert limited.status_code == 429 and limited.headers["retry-after"] == date
    assert limited.json()["code"] == "too_many_requests" and limited.json()["status"] == 429

    # A pattern names one service: "info" is a Wiro route name, "dify:info" the Dify one.
    emu.faults.http_error("info", 500)
    assert httpx.get(emu.dify_url + "/info", headers=headers, trust_env=False).status_code == 200
    emu.faults.reset()
    emu.faults.http_error("dify:", 500)  # every Dify route
    assert http.post("/Tool/List", json={}).status_code == 200
    broken = httpx.get(emu.dify_url + "/info", headers=headers, trust_env=False)
    assert broken.status_code == 500 and broken.json()["code"] == "internal_server_error"
    with pytest.raises(ValueError):
        emu.faults.business_error("dify:chat-messages")


def test_stats_count_dify_routes(emu: Emulator) -> None:
    dify_before, wiro_before = emu.stats.count("dify:chat-messages"), emu.stats.count("chat-messages")
    body = {"inputs": {}, "query": "count me", "user": "counted", "response_mode": "blocking"}
    answer = httpx.post(emu.dify_url + "/chat-messages", json=body, trust_env=False,
                        headers={"Authorization": f"Bearer {emu.dify_chat_key}"})
    assert answer.status_code == 200
    assert emu.stats.count("dify:chat-messages") == dify_before + 1
    assert emu.stats.count("chat-messages") == wiro_before  # the Wiro namespace has no such route


def test_fault_oversized_socket_frame(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.oversized_socket_frame(300_000, times=2)
    with socket(emu) as ws:
        queued_run(emu, http, ws, "wiro/kitchen-sink", {"prompt": "padded", "mode": "fast"})
        raw: list[str] = []
        while not raw or json.loads(raw[-1])["type"] not in TERMINAL:
            message = ws.recv(timeout=10)
            assert isinstance(message, str)
            raw.append(message)
    frames = [json.loads(text) for text in raw]
    assert [f["type"] for f in frames[:2]] == ["task_accept", "task_assign"]
    assert all(len(text.encode()) >= 300_000 and set(frame["padding"]) == {" "} for text, frame in zip(raw[:2], frames[:2],
                                                                                                     strict=True))
    assert all("padding" not in frame and len(text) < 10_000 for text, frame in zip(raw[2:], frames[2:], strict=True))


def test_concurrency_limit_refuses_like_the_service_and_max_active(emu: Emulator) -> None:
    # Its own emulator: the session one may still hold active tasks of earlier tests.
    with Emulator(stage_delay=0) as own, httpx.Client(base_url=own.api_url, trust_env=False, timeout=10,
                                                      headers={"x-api-key": own.api_key}) as client:
        own.faults.concurrency_limit(2)
        first, _ = (run(client, "wiro/slow", {"seconds": 600}) for _ in range(2))
        refused = client.post("/Run/wiro/slow", json={"seconds": 600})
        assert refused.status_code == 200
        errors = refused.json()["errors"]
        assert refused.json() == {"result": False, "errors": errors} and len(errors) == 1
        assert errors[0]["code"] == 96 and errors[0]["message"].startswith("You have reached your concurrent task limit.")
        assert len(own.tasks) == 2 and own.stats.max_active == 2  # nothing was started

        own.wait_task(first["taskid"], statuses=("task_start",))
        assert post(client, "/Task/Kill", {"taskid": first["taskid"]})["result"] is True
        run(client, "wiro/slow", {"seconds": 600})  # a slot is free again
        assert client.post("/Run/wiro/slow", json={"seconds": 600}).json()["errors"][0]["code"] == 96
        own.faults.concurrency_limit(None)
        run(client, "wiro/slow", {"seconds": 600})
        assert own.stats.max_active == 3
        own.stats.reset()
        assert own.stats.max_active == 0
        own.faults.concurrency_limit(0)
        own.faults.reset()  # lifts it too
        run(client, "wiro/kitchen-sink", {"prompt": "free", "mode": "fast"})
        assert own.stats.max_active == 4


# --- keys ----------------------------------------------------------------------------------------


def test_keys_are_random_per_emulator_and_the_old_published_keys_are_refused(emu: Emulator) -> None:
    names = ("api_key", "signature_key", "signature_secret", "dify_chat_key", "dify_agent_key", "dify_chatflow_key")
    other = Emulator(stage_delay=0)  # keys exist before start()
    mine, theirs = ([getattr(e, n) for n in names] for e in (emu, other))
    assert len({*mine, *theirs}) == 12  # no key shared, within one emulator or between two
    assert mine[0].startswith("wiro-demo-") and all(k.startswith("app-") for k in mine[3:])
    assert all(len(k) >= 28 for k in mine)  # a prefix and 144 random bits
    given = Emulator(stage_delay=0, api_key="wiro-demo-given-1234567890", dify_chat_key="app-given-0987654321")
    assert (given.api_key, given.dify_chat_key) == ("wiro-demo-given-1234567890", "app-given-0987654321")
    with pytest.raises(ValueError):
        Emulator(dify_chat_key="app-same-key-000", dify_agent_key="app-same-key-000")

    old_wiro = httpx.post(f"{emu.api_url}/Tool/List", json={}, headers={"x-api-key": "wiro-demo-key-0000000000"},
                          trust_env=False)
    assert old_wiro.status_code == 401
    for old in ("app-emuChat7d1f0c2b9a4e5f60", "app-emuAgent3b8e5a61c0d2e4f", "app-emuFlow9c4d2e7f1a06b3c8"):
        answer = httpx.get(emu.dify_url + "/info", headers={"Authorization": f"Bearer {old}"}, trust_env=False)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert httpx.get(emu.dify_url + "/info", headers={"Authorization": f"Bearer {emu.dify_agent_key}"},
                     trust_env=False).json()["mode"] == "agent-chat"


# --- the test-purpose models ---------------------------------------------------------------------


def test_stream_llm_sends_exactly_frames_snapshots_of_exactly_chars(emu: Emulator, http: httpx.Client) -> None:
    texts = {}
    for chars, frames in ((5000, 37), (3, 5)):
        with socket(emu) as ws:
            token = queued_run(emu, http, ws, "wiro/stream-llm", {"prompt": "go", "chars": chars, "frames": frames})
            received = frames_until(ws, token=token)
        snapshots = [f["message"] for f in received if f["type"] == "task_output"]
        assert len(snapshots) == frames
        answers = ["".join(s["answer"]) for s in snapshots]
        assert [len(a) for a in answers] == [chars * k // frames for k in range(1, frames + 1)]
        assert all(later.startswith(earlier) for earlier, later in pairwise(answers))
        assert all(s["type"] == "answer" and s["thinking"] == [] and s["raw"] == a for s, a in zip(snapshots, answers,
                                                                                                     strict=True))
        task = detail(http, tasktoken=token)
        full = answers[-1]
        assert task["debugoutput"] == full
        assert task["outputs"] == [{"contenttype": "raw", "content": {"prompt": "go", "raw": full, "thinking": [],
                                                                      "answer": [full]}}]
        texts[chars] = full
    again = run(http, "wiro/stream-llm", {"prompt": "again", "chars": 5000, "frames": 2})
    assert emu.wait_task(again["taskid"]).debugoutput == texts[5000] and texts[5000].startswith(texts[3])  # deterministic
    too_long = post(http, "/Run/wiro/stream-llm", {"prompt": "x", "chars": 2_000_001})
    assert too_long["errors"] == [{"code": 0, "message": "Request parameter [chars] must be between 1 and 2000000"}]


def test_named_output_declares_hostile_and_duplicate_names_verbatim(emu: Emulator, http: httpx.Client) -> None:
    name, content_type = '<script>alert("x")</script>\'../../etc/passwd', 'text/html"><script>'
    with socket(emu) as ws:
        token = queued_run(emu, http, ws, "wiro/named-output",
                           {"count": 3, "name": name, "contenttype": content_type, "text": "héllo"})
        final = frames_until(ws, token=token)[-1]["message"]
    task = detail(http, tasktoken=token)
    assert final == task["outputs"] and len(final) == 3
    assert all((o["name"], o["contenttype"]) == (name, content_type) for o in final)
    urls = [o["url"] for o in final]
    assert len(set(urls)) == 3
    for output in final:
        folder, served = output["url"].removeprefix(emu.base_url + "/files/").split("/")
        assert all(c.isalnum() or c in "._-" for c in served) and served not in (".", "..") and folder
        fetched = http.get(output["url"])
        assert fetched.content == "héllo".encode() and output["size"] == str(len(fetched.content))
        assert fetched.headers["content-type"] == "application/octet-stream"  # never the declared text
    assert post(http, "/Task/InputOutputDelete", {"tasktoken": token})["result"] is True
    assert all(http.get(url).status_code == 404 for url in urls)

    pictures = run(http, "wiro/named-output", {"count": 2})
    outputs = emu.wait_task(pictures["taskid"]).outputs
    assert [(o["name"], o["contenttype"]) for o in outputs] == [("0.png", "image/png")] * 2
    assert outputs[0]["url"] != outputs[1]["url"]
    png = http.get(outputs[1]["url"])
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and png.headers["content-type"] == "image/png"


# --- packaging -----------------------------------------------------------------------------------


def emulator_imports() -> dict[str, set[str]]:
    return package_imports(ROOT / "wiro_jupyter" / "emulator")


def test_emulator_imports_nothing_from_the_client() -> None:
    allowed_roots = set(sys.stdlib_module_names) | {"starlette", "uvicorn", "PIL"}
    for module, named in emulator_imports().items():
        for target in named:
            if target.startswith("wiro_jupyter"):
                assert target.startswith("wiro_jupyter.emulator"), f"{module} reaches out of the emulator: {target}"
            else:
                assert target.split(".")[0] in allowed_roots, f"{module}: {target}"


def test_emulator_modules_form_no_import_cycle() -> None:
    imports = emulator_imports()
    assert first_cycle(imports) is None, "import cycle: " + " -> ".join(first_cycle(imports) or [])
    assert len(imports) > 20 and "wiro_jupyter.emulator._state" in imports  # the walk saw the whole package


def test_importing_the_emulator_is_cheap() -> None:
    code = ("import sys; from wiro_jupyter.emulator import Emulator; "
            "print([m for m in ('starlette', 'uvicorn', 'PIL', 'IPython') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "[]", out.stderr


def test_cli_prints_urls_and_serves() -> None:
    command = [sys.executable, "-m", "wiro_jupyter.emulator", "--port", "0", "--stage-delay", "0"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        lines: queue.Queue[str] = queue.Queue()
        stdout = process.stdout
        assert stdout is not None

        def pump() -> None:  # readline with a timeout, portably: a thread feeding a queue
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        try:
            seen: dict[str, str] = {}
            while "Dify chatflow key" not in seen:
                line = lines.get(timeout=20)
                if ":" in line:
                    label, _, value = line.partition(":")
                    seen[label.strip()] = value.strip()
            assert seen["API URL"].startswith("http://127.0.0.1:") and seen["API URL"].endswith("/v1")
            assert seen["Socket URL"].startswith("ws://127.0.0.1:") and seen["Dify URL"].endswith("/dify/v1")
            answer = httpx.post(seen["API URL"] + "/Tool/List", json={}, headers={"x-api-key": seen["API key"]},
                                trust_env=False)
            assert answer.json()["result"] is True and seen["API key"].startswith("wiro-demo-")
            for app, mode in (("chat", "chat"), ("agent", "agent-chat"), ("chatflow", "advanced-chat")):
                info = httpx.get(seen["Dify URL"] + "/info", headers={"Authorization": f"Bearer {seen[f'Dify {app} key']}"},
                                 trust_env=False)
                assert info.json()["mode"] == mode
        finally:
            process.terminate()
            assert process.wait(timeout=15) == 0  # SIGTERM stops it cleanly


# --- read-only inspection (benchmarks in another process) ---------------------------------------------


def test_inspection_routes_show_voice_frames_and_stats_read_only(emu: Emulator, http: httpx.Client) -> None:
    import time

    token = run(http, "wiro/realtime-echo", {"voice": "marin"})["socketaccesstoken"]
    inspect = httpx.Client(base_url=emu.base_url + "/_emulator", trust_env=False, timeout=10)  # no key needed
    pcm = bytes(4800)  # 100 ms of silence
    with inspect, socket(emu) as ws:
        listen(emu, ws, token)
        frames_until(ws, last=("task_stream_ready",))
        sent = []
        for _ in range(2):
            sent.append(time.monotonic())
            ws.send(token.encode() + b"|" + pcm)
            frames_until(ws, last=("task_cost",))
        voice = inspect.get(f"/voice/{token}").json()
        assert voice["frames_in"] == [4800, 4800] and voice["bytes_in"] == 9600 and voice["frames_out"] == [4800, 4800]
        assert voice["status"] == "task_start" and voice["realtime"] is True and voice["turns"] == 2
        # The server's monotonic clock is this process's: each frame arrived after it was sent, in order.
        assert sent[0] <= voice["times_in"][0] <= sent[1] <= voice["times_in"][1] <= voice["monotonic"] <= time.monotonic()
        assert "pcm_in" not in voice and "pcm_out" not in voice  # sizes and times, never the audio

        before = emu.stats.count()
        emu.faults.http_error("", 503)  # every route of both services; not the inspection routes
        stats = inspect.get("/stats").json()
        assert stats["socket_connections"] >= 1 and stats["requests"]["Run/wiro/realtime-echo"] >= 1
        assert inspect.get("/voice/no-such-token").status_code == 404
        assert inspect.get("/tasks").status_code == 404
        assert inspect.post("/stats").status_code == 405
        assert emu.stats.count() == before  # inspection is not counted
        assert http.post("/Tool/List", json={}).status_code == 503  # the knob was still armed for the real API
        ws.send(json.dumps({"type": "task_session_end", "tasktoken": token}))
        frames_until(ws)
