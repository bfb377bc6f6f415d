"""The emulator in a process of its own, for the benchmarks (`_harness.Server` starts it).

It prints one JSON line with its URLs and keys, then reads knob commands from stdin, one JSON object a line,
answering `ok` (or `error: …`) to each:

    {"concurrency_limit": 16}       the account's concurrent-task limit (null lifts it)

It stops when stdin closes, which also happens when the benchmark process dies: no emulator outlives a run.
Dify streams go as fast as the server can send them (no pause between deltas), so a stream figure measures
the client reading them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from wiro_jupyter.emulator import Emulator


def apply(emu: Emulator, knobs: dict[str, Any]) -> None:
    for name, value in knobs.items():
        if name == "concurrency_limit":
            emu.faults.concurrency_limit(value)
        else:
            raise ValueError(f"unknown knob {name!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage-delay", type=float, default=0.01)
    parser.add_argument("--max-upload-mb", type=int, default=100, help="File/Upload's size limit")
    args = parser.parse_args()
    with Emulator(stage_delay=args.stage_delay) as emu:
        emu.state.max_upload_bytes = args.max_upload_mb * 1024 * 1024
        emu.dify.delta_delay = 0.0
        info = {"base_url": emu.base_url, "api_url": emu.api_url, "socket_url": emu.socket_url, "dify_url": emu.dify_url,
                "api_key": emu.api_key, "dify_chat_key": emu.dify_chat_key}
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            try:
                apply(emu, json.loads(line))
            except (ValueError, TypeError) as exc:
                print(f"error: {exc}", flush=True)
            else:
                print("ok", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
