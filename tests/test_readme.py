"""The README's curl examples, and the reference pages' in docs/, run as written against a live
server.

Every ```sh block that calls curl runs, in order (the README first, then each page of docs/ by
name), in one bash session (so variables carry from block to block), with `B` pointed at the
live server. A `# {...}` or `# [...]` line under a
command is what that command must print, where `...` stands for anything and the README's
http://127.0.0.1:8000 for the live server.
"""

import re
import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
README = BASE_DIR / "README.md"
PAGES = [README, *sorted((BASE_DIR / "docs").glob("*.md"))]
README_HOST = "http://127.0.0.1:8000"


def curl_blocks() -> list[str]:
    blocks = [block for page in PAGES for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S)]
    return [b for b in blocks if "curl " in b]


def steps(blocks: list[str]) -> list[tuple[str, str | None]]:
    """(command, expected output or None), with continued lines joined."""
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    result: list[tuple[str, str | None]] = []
    for line in lines:
        stripped = line.strip()
        if re.match(r"# [\[{]", stripped) and result and result[-1][1] is None:
            result[-1] = (result[-1][0], stripped[2:])
        elif stripped and not stripped.startswith("#"):
            result.append((stripped, None))
    return result


def pattern(expected: str, base: str) -> str:
    parts = expected.replace(README_HOST, base).split("...")
    return ".*?".join(re.escape(p) for p in parts)


def test_the_readme_has_curl_examples_with_expected_answers():
    assert len(curl_blocks()) >= 4
    assert sum(1 for _, expected in steps(curl_blocks()) if expected) >= 15


@pytest.mark.django_db(transaction=True)
def test_every_curl_example_in_the_readme_answers_as_written(live_server):
    script_steps = steps(curl_blocks())
    script = ["set -euo pipefail"]
    for n, (command, _) in enumerate(script_steps):
        if command.startswith("B="):
            command = f"B={live_server.url}"
        script += [command, f"printf '\\n@@step {n}@@\\n'"]
    run = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    outputs = re.split(r"\n?@@step \d+@@\n", run.stdout)
    for (command, expected), output in zip(script_steps, outputs, strict=False):
        if expected is None:
            continue
        assert re.fullmatch(pattern(expected, live_server.url), output.strip(), re.S), (command, output)


def test_the_api_table_says_what_delete_means():
    api = BASE_DIR / "docs" / "api.md"
    [row] = [line for line in api.read_text().splitlines() if line.startswith("| `DELETE /api/counters/{name}`")]
    assert (
        "one created again under the same name starts again from its starting value (1, 2, 3 ... then 1, 2 again)"
        in row
    )
