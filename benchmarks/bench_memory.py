"""Figure 5, memory: downloading a big output (`wiro/big-file`) and uploading a big file (File/Upload), the peak
growth of the client's resident memory; against `httpx` streaming the same bytes by hand (a download written
chunk by chunk, an upload of an open file). Each transfer runs in a fresh process of its own (a peak is a
property of a process), after a 1 MB warm-up of the same path:

    python benchmarks/bench_memory.py <download|upload> <ours|raw> <big target> <small target>

(the targets: a task token or an output URL to download, a file to upload); it prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import wiro_jupyter as wj

from _harness import HERE, Row, Server, Target, peak_rss_growth, server_from_env, timed_process

MB = 1024**2
CHILD_TIMEOUT = 300.0


def transfers(direction: str, who: str, folder: Path) -> Callable[[str], int]:
    """The transfer a child measures, its client already made: target → bytes moved."""
    info = server_from_env()
    if who == "ours":
        wiro = wj.Wiro(api_key=info["api_key"], api_url=info["api_url"], socket_url=info["socket_url"])
        if direction == "download":
            return lambda token: sum(p.stat().st_size for p in wiro.task(token).save(folder, max_bytes=2**40))
        return lambda path: wiro.upload(path).size or 0
    http = httpx.Client(base_url=info["api_url"], headers={"x-api-key": info["api_key"]}, timeout=120, trust_env=False)
    if direction == "download":
        def download(url: str) -> int:
            size = 0
            with http.stream("GET", url) as response, (folder / "blob.bin").open("wb") as sink:
                for chunk in response.iter_bytes(1 << 16):
                    sink.write(chunk)
                    size += len(chunk)
            return size

        return download

    def upload(path: str) -> int:
        with open(path, "rb") as source:
            answer = http.post("/File/Upload", files={"file": (Path(path).name, source, "application/octet-stream")})
        return int(answer.json()["list"][0]["size"])

    return upload


def child(direction: str, who: str, big: str, small: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        transfer = transfers(direction, who, folder)
        transfer(small)  # warm-up: imports, pools, buffers
        for leftover in folder.iterdir():
            leftover.unlink()
        with peak_rss_growth() as growth:
            start = time.perf_counter()
            size = transfer(big)
            seconds = time.perf_counter() - start
    print(json.dumps({"growth_mb": growth(), "bytes": size, "seconds": seconds}))


def measure(server: Server, direction: str, who: str, big: str, small: str, expected: int) -> dict[str, float]:
    env = {**os.environ, **server.env()}
    _, out = timed_process([sys.executable, str(HERE / "bench_memory.py"), direction, who, big, small],
                           timeout=CHILD_TIMEOUT, env=env)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    if result["bytes"] != expected:
        raise RuntimeError(f"{direction} ({who}) moved {result['bytes']:,} bytes, not {expected:,}")
    return result


def big_file(folder: Path, megabytes: int) -> Path:
    path = folder / f"upload-{megabytes}mb.bin"
    block = os.urandom(MB)
    with path.open("wb") as sink:
        for _ in range(megabytes):
            sink.write(block)
    return path


def run(server: Server, quick: bool) -> list[Row]:
    megabytes = 20 if quick else 200
    with wj.Wiro(api_key=server.api_key, api_url=server.api_url, socket_url=server.socket_url, journal=False) as wiro:
        big, small = (wiro.run("wiro/big-file", megabytes=n, timeout=60) for n in (megabytes, 1))
    rows = []
    results = {who: measure(server, "download", who, *(
        (big.token, small.token) if who == "ours" else (big.outputs[0].url, small.outputs[0].url)), megabytes * MB)
        for who in ("ours", "raw")}
    rows.append(Row(f"5 download {megabytes} MB: peak RSS growth", results["ours"]["growth_mb"],
                    results["raw"]["growth_mb"], "MB", "httpx stream", Target(limit=30),
                    f"{results['ours']['seconds']:.2f} s (httpx by hand {results['raw']['seconds']:.2f} s)"))
    with tempfile.TemporaryDirectory() as scratch:
        path, warm = big_file(Path(scratch), megabytes), big_file(Path(scratch), 1)
        results = {who: measure(server, "upload", who, str(path), str(warm), megabytes * MB) for who in ("ours", "raw")}
    rows.append(Row(f"5 upload {megabytes} MB: peak RSS growth", results["ours"]["growth_mb"],
                    results["raw"]["growth_mb"], "MB", "httpx file", Target(limit=30),
                    f"{results['ours']['seconds']:.2f} s (httpx by hand {results['raw']['seconds']:.2f} s)"))
    return rows


if __name__ == "__main__":
    child(*sys.argv[1:5])
