"""Regenerate requirements.lock and requirements-ros.lock from the .txt files (pip's resolver report)."""

import json
import subprocess
import sys
import tempfile

PAIRS = [("requirements.txt", "requirements.lock"), ("requirements-ros.txt", "requirements-ros.lock")]


def resolve(src: str) -> list[str]:
    with tempfile.NamedTemporaryFile(suffix=".json") as report, tempfile.NamedTemporaryFile("w", suffix=".txt") as cons:
        cons.write("torch==2.13.0\n")
        cons.flush()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--dry-run",
                "--ignore-installed",
                "--report",
                report.name,
                "-c",
                cons.name,
                "-r",
                src,
            ],
            check=True,
        )
        items = json.load(open(report.name))["install"]
    return sorted(f"{i['metadata']['name']}=={i['metadata']['version'].split('+')[0]}" for i in items)


if __name__ == "__main__":
    for src, dst in PAIRS:
        lines = resolve(src)
        with open(dst, "w") as f:
            f.write(f"# Exact versions resolved from {src} (regenerate: make lock).\n" + "\n".join(lines) + "\n")
        print(f"{dst}: {len(lines)} packages")
