"""`python -m wiro_jupyter.emulator` (and `wiro-jupyter emulator`): run the emulator in the foreground until Ctrl-C.

It prints its URLs and its keys, which are fresh random ones on every start unless `--api-key` is given.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wiro-jupyter emulator",
                                     description="Run a local emulator of the Wiro AI API (REST + task socket + Dify).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    parser.add_argument("--stage-delay", type=float, default=0.15,
                        help="seconds between task lifecycle frames (default 0.15)")
    parser.add_argument("--api-key", default=None, help="API key of the key-only project (default: a random one)")
    parser.add_argument("--output-ttl", type=float, default=None, help="seconds before output files expire")
    args = parser.parse_args(list(argv) if argv is not None else None)

    from ._server import Emulator

    emu = Emulator(port=args.port, host=args.host, stage_delay=args.stage_delay, api_key=args.api_key,
                   output_ttl=args.output_ttl)
    try:
        emu.start()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lines = [
        f"Wiro emulator running (stage delay {emu.stage_delay:g} s)",
        f"API URL:           {emu.api_url}",
        f"Socket URL:        {emu.socket_url}",
        f"Dify URL:          {emu.dify_url}",
        f"API key:           {emu.api_key}",
        f"Signature key:     {emu.signature_key}",
        f"Signature secret:  {emu.signature_secret}",
        f"Dify chat key:     {emu.dify_chat_key}",
        f"Dify agent key:    {emu.dify_agent_key}",
        f"Dify chatflow key: {emu.dify_chatflow_key}",
        "",
        "For a client in another shell:",
        f"  export WIRO_API_URL={emu.api_url} WIRO_SOCKET_URL={emu.socket_url} WIRO_API_KEY={emu.api_key}",
        f"  export WBOT_API_URL={emu.dify_url} WBOT_API_KEY={emu.dify_chat_key}",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    # SIGTERM (e.g. `terminate()` from a parent process) stops as cleanly as Ctrl-C; handlers can
    # only be installed from the main thread.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if main_thread else None
    try:
        while not stop.wait(0.5):  # a bounded wait keeps Ctrl-C responsive on every platform
            if not emu.running:
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        emu.stop()
        print("Wiro emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
