"""Figure 6, start-up: `import wiro_jupyter` and `%load_ext wiro_jupyter` in fresh processes, against bare Python
and bare IPython (no profile, no history). The four commands alternate, repeated; medians of wall time."""

from __future__ import annotations

import os
import sys

from _harness import Row, Server, Target, median, timed_process

IPYTHON = [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--HistoryManager.enabled=False", "-c"]
COMMANDS = {
    "python": [sys.executable, "-c", "pass"],
    "import": [sys.executable, "-c", "import wiro_jupyter"],
    "ipython": [*IPYTHON, "pass"],
    "load_ext": [*IPYTHON, "%load_ext wiro_jupyter"],
}
TIMEOUT = 60.0


def run(server: Server, quick: bool) -> list[Row]:
    repeats = 3 if quick else 15
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIRO_", "WBOT_"))}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, command in COMMANDS.items():
            times[name].append(timed_process(command, timeout=TIMEOUT, env=env)[0] * 1000)
    note = f"median of {repeats} fresh processes each"
    return [
        Row("6 start-up: import wiro_jupyter", median(times["import"]), median(times["python"]), "ms", "python -c pass",
            Target(added=50), note),
        Row("6 start-up: %load_ext wiro_jupyter", median(times["load_ext"]), median(times["ipython"]), "ms",
            "bare IPython", Target(added=50), note),
    ]
