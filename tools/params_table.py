"""Print the README's parameter tables from the nodes' declared parameters (one source of truth).

Usage: .venv/bin/python tools/params_table.py [--write]   (--write: replace README's tables)
"""

import pathlib
import re
import sys

from moejepa_ros.ros.params import CONFIGURE_ONLY_NOTE, PLANNER_NODE_SPECS, SIM_NODE_SPECS


def table(specs) -> str:
    rows = ["| parameter | type | default | range / choices | meaning |", "|---|---|---|---|---|"]
    for s in specs:
        rng = " … ".join(f"{v:g}" for v in (s.low, s.high)) if s.low is not None else ""
        if s.choices:
            rng = " \\| ".join(s.choices)
        ro = " (read-only)" if s.read_only else f" ({CONFIGURE_ONLY_NOTE})" if s.configure_only else ""
        default = "unset" if s.default is None else f"`{s.default!r}`" if s.default == "" else f"`{s.default}`"
        meaning = s.description.replace("|", "\\|")
        rows.append(f"| `{s.name}` | {s.type.name.lower()} | {default} | {rng} | {meaning}{ro} |")
    return "\n".join(rows)


def tables() -> str:
    return "#### planner_node\n\n" + table(PLANNER_NODE_SPECS) + "\n\n#### sim_node\n\n" + table(SIM_NODE_SPECS)


if __name__ == "__main__":
    if "--write" in sys.argv:
        readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
        text = readme.read_text()
        new = re.sub(
            r"(<!-- params:begin -->\n).*?(\n<!-- params:end -->)",
            lambda m: m.group(1) + tables() + m.group(2),
            text,
            flags=re.S,
        )
        readme.write_text(new)
    else:
        print(tables())
