"""`wiro-jupyter` command line: `demo` (the main job) and `emulator`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def notebook_path(name: str) -> Path:
    """A bundled notebook: from the source tree when installed editable, else from the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "notebooks" / name, here / "_notebooks" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"notebook {name} is not bundled with this installation")


def run_notebook(source: Path, out_dir: Path, *, env: dict[str, str], timeout: int = 300) -> tuple[Path, Path]:
    """Execute `source` in a fresh kernel with `env`; write the executed copy and an HTML copy to `out_dir`."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(source, as_version=4)
    previous = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        with tempfile.TemporaryDirectory() as workdir:
            client = NotebookClient(
                nb,
                kernel_name="python3",
                timeout=timeout,
                store_widget_state=True,
                resources={"metadata": {"path": workdir}},
            )
            client.execute()
    finally:
        os.environ.clear()
        os.environ.update(previous)
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / source.name
    nbformat.write(nb, executed)
    # The HTML copy is for reading offline: without the widget state, nbconvert shows each
    # widget's static fallback (HTML/PNG) instead of a widget that would load its scripts from a CDN.
    offline = nbformat.from_dict(nb)
    offline.metadata.pop("widgets", None)
    body, _ = HTMLExporter().from_notebook_node(offline)
    html_path = executed.with_suffix(".html")
    html_path.write_text(body, encoding="utf-8")
    return executed, html_path


def demo(args: argparse.Namespace) -> int:
    from ._emulated import emulator_chat_env
    from .emulator import Emulator

    out_dir = Path(args.output).resolve()
    started = time.perf_counter()
    with Emulator(stage_delay=args.stage_delay) as emu, tempfile.TemporaryDirectory() as home:
        print(f"emulator: {emu.api_url} (synthetic models; no account, no network)")
        env = {
            "WIRO_API_URL": emu.api_url,
            "WIRO_SOCKET_URL": emu.socket_url,
            "WIRO_API_KEY": emu.api_key,
            "WIRO_HOME": home,
            **emulator_chat_env(emu),
        }
        os.environ.pop("WIRO_API_SECRET", None)  # the emulator's demo project is key-only
        results = []
        for name in args.notebooks:
            print(f"executing {name} …", flush=True)
            results.append(run_notebook(notebook_path(name), out_dir, env=env))
    for executed, html_path in results:
        print(f"wrote {executed}")
        print(f"wrote {html_path}")
    print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0


def emulator(args: argparse.Namespace) -> int:
    from .emulator.__main__ import main as emulator_main

    argv = ["--port", str(args.port), "--stage-delay", str(args.stage_delay)]
    return int(emulator_main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wiro-jupyter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the quickstart notebook against the local emulator")
    p_demo.add_argument("--output", default=".", help="folder for the executed notebook and its HTML copy")
    p_demo.add_argument("--stage-delay", type=float, default=0.05, help="emulator seconds between task stages")
    p_demo.add_argument("notebooks", nargs="*", default=["01-quickstart.ipynb"], help="bundled notebooks to run")
    p_demo.set_defaults(func=demo)
    p_emu = sub.add_parser("emulator", help="serve the emulator in the foreground (prints its URLs and random keys)")
    p_emu.add_argument("--port", type=int, default=0)
    p_emu.add_argument("--stage-delay", type=float, default=0.15)
    p_emu.set_defaults(func=emulator)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a command-line user gets the paragraph, not our traceback
        from ._exceptions import WiroError

        if isinstance(exc, WiroError) or type(exc).__name__ in ("CellExecutionError", "FileNotFoundError"):
            print(f"wiro-jupyter {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
