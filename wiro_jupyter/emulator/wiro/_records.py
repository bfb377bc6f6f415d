"""One task as the emulator knows it (`TaskRecord`), the statuses it goes through, and its Task/Detail form.

References like "Wiro §6" are sections of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ._auth import Project
from ._ids import cdn_folder, hex_id
from ._models import InputFile, ModelSpec

TERMINAL = ("task_postprocess_end", "task_cancel")
# Control items on a realtime task's `audio` queue, next to the PCM chunks: the client's interrupt, and
# the server's own end of the session (`faults.end_voice_session`, Wiro §9). `None` is the client's end.
INTERRUPT = "interrupt"
SERVER_END = "server_end"
RECORD_CAP = 5 * 60 * 48_000  # PCM bytes a VoiceLog keeps per direction: five minutes at 24 kHz
PRE_RUN = ("task_accept", "task_assign", "task_preprocess_start", "task_preprocess_end", "task_start")
STATUS_TIMES = {
    "task_queue": "createtime", "task_accept": "accepttime", "task_assign": "assigntime",
    "task_preprocess_start": "preprocessstarttime", "task_preprocess_end": "preprocessendtime",
    "task_start": "starttime", "task_end": "endtime", "task_postprocess_start": "postprocessstarttime",
    "task_postprocess_end": "postprocessendtime", "task_cancel": "canceltime",
}


@dataclass(eq=False)
class VoiceLog:
    """What a realtime session exchanged (Wiro §9), kept for tests: `emu.tasks[id].voice`.

    The PCM itself is kept up to `RECORD_CAP` bytes per direction; the counters and frame lists
    cover the whole session.
    """

    pcm_in: bytearray = field(default_factory=bytearray)  # PCM received, token prefix removed
    bytes_in: int = 0
    frames_in: list[int] = field(default_factory=list)  # PCM bytes of each binary frame received
    times_in: list[float] = field(default_factory=list)  # time.monotonic() of each frame received
    pcm_out: bytearray = field(default_factory=bytearray)  # PCM sent (the model's voice)
    bytes_out: int = 0
    frames_out: list[int] = field(default_factory=list)
    costs: list[dict[str, Any]] = field(default_factory=list)  # every task_cost frame sent
    interrupts: int = 0  # task_session_interrupt frames received
    session_end: bool = False  # the client sent task_session_end
    end_after_turns: int | None = None  # armed by faults.end_voice_session

    def received(self, pcm: bytes) -> None:
        self.bytes_in += len(pcm)
        self.frames_in.append(len(pcm))
        self.times_in.append(time.monotonic())
        if len(self.pcm_in) < RECORD_CAP:
            self.pcm_in += pcm[: RECORD_CAP - len(self.pcm_in)]

    def sent(self, pcm: bytes) -> None:
        self.bytes_out += len(pcm)
        self.frames_out.append(len(pcm))
        if len(self.pcm_out) < RECORD_CAP:
            self.pcm_out += pcm[: RECORD_CAP - len(self.pcm_out)]


@dataclass(eq=False)
class TaskRecord:
    """One task as the emulator knows it. `detail()` is its Task/Detail wire form (Wiro §6); `record["status"]` works too."""

    id: str
    token: str
    project: Project
    spec: ModelSpec
    parameters: dict[str, Any]  # echoed, string-coerced
    values: dict[str, Any]  # effective typed values for the model run
    inputs: dict[str, list[InputFile]]
    callback_url: str = ""
    status: str = "task_queue"
    pexit: str | None = None
    times: dict[str, str] = field(default_factory=lambda: dict.fromkeys(STATUS_TIMES.values(), "0"))
    outputs: list[dict[str, Any]] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    debugoutput: str = ""
    debugerror: str = ""
    totalcost: str = "0"
    started_at: float | None = None
    ended_at: float | None = None
    turns: int = 0
    progress_frames: int = 0
    llm: dict[str, Any] | None = None
    folder_id: str = field(default_factory=hex_id)
    cdn: str = field(default_factory=cdn_folder)
    runner: asyncio.Task[None] | None = None
    listener: asyncio.Event = field(default_factory=asyncio.Event)
    audio: asyncio.Queue[bytes | str | None] = field(default_factory=asyncio.Queue)
    voice: VoiceLog = field(default_factory=VoiceLog)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def realtime(self) -> bool:
        return self.spec.price_method == "cp-realtimeturn"

    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (self.ended_at or time.time()) - self.started_at)

    def detail(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "id": self.id, "uuid": self.project.uuid, "name": "", "description": "",
            "socketaccesstoken": self.token, "parameters": dict(self.parameters),
            "debugoutput": self.debugoutput, "debugerror": self.debugerror,
            "status": self.status, "pexit": self.pexit,  # null while running (Wiro §6)
            **self.times,
            "elapsedseconds": f"{self.elapsed():.4f}", "cps": spec.cps, "totalcost": self.totalcost,
            "guestid": None, "projectid": self.project.id, "modelid": spec.id, "runtype": "model",
            "callbackurl": self.callback_url, "marketplaceid": None,
            "categories": json.dumps(list(spec.categories)),  # a JSON string (Wiro §6: unconfirmed)
            "dynamicprice": spec.dynamicprice, "modeldescription": spec.description,
            "modelslugowner": spec.owner, "modelslugproject": spec.clean,
            "size": str(sum(int(o.get("size", 0)) for o in self.outputs if "size" in o)),
            "outputs": [dict(o) for o in self.outputs],
        }

    def __getitem__(self, key: str) -> Any:
        return self.detail()[key]
