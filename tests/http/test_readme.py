"""The README's map of the code matches the code: every route is in the route
table with a view that exists, and every path the layout names exists."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from support.constants import ROOT

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def route_table() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z]+ /[^`]*)` \| `([^`]+)` `(\w+)` \|", section("Layout"), re.M)
    return {route: f"{path}:{view}" for route, path, view in rows}


def test_every_route_is_in_the_route_table(app):
    served = {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == set(route_table())


def test_every_view_in_the_table_is_where_it_says(app):
    table = route_table()
    for rule in app.url_map.iter_rules():
        view = inspect.unwrap(app.view_functions[rule.endpoint])
        where = f"{Path(inspect.getsourcefile(view)).relative_to(ROOT)}:{view.__name__}"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert table[f"{method} {rule.rule}"] == where


def test_every_path_in_the_layout_exists():
    tree = section("Layout").split("```")[1]
    parents: list[str] = []
    for line in tree.strip("\n").splitlines():
        name = line.split()[0]
        depth = (len(line) - len(line.lstrip())) // 2
        parents = parents[:depth]
        for part in name.split():
            if part.endswith("/") or "." in part:
                path = "".join(parents) + part
                assert (ROOT / path).exists(), path
        if name.endswith("/"):
            parents.append(name)
