"""Rendering the demo's summary for a person (rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree


def _pairs(title: str, data: dict[str, Any], *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for k, v in data.items():
        table.add_row(str(k), str(v))
    return table


def render_summary(console: Console, s: dict[str, Any]) -> None:
    console.print(Panel.fit("[bold]SignalsLoop demo: Tidewater feedback, processed by six agents[/bold]"))
    console.print(_pairs("Events by type", s["events_by_type"], "type", "count"))
    console.print(_pairs("Deliveries by status", s["deliveries_by_status"], "status", "count"))
    lat = Table(title="Latency (ms)", title_justify="left")
    for c in ("", "p50", "p95", "p99", "n"):
        lat.add_column(c)
    for name in ("reaction_ms", "processing_ms"):
        v = s[name]
        lat.add_row(name.removesuffix("_ms"), *(str(v.get(k)) for k in ("p50", "p95", "p99", "n")))
    console.print(lat)
    themes = Table(title="Themes", title_justify="left")
    for c in ("theme", "feedback", "negative", "positive"):
        themes.add_column(c)
    for t in s["themes"]:
        themes.add_row(t["name"], str(t["feedback_count"]), str(t["negative_count"]), str(t["positive_count"]))
    console.print(themes)
    if s["chain_to_spec"]:
        tree = Tree("[bold]One feedback item, from feedback.created to spec.auto_drafted[/bold]")
        node = tree
        for step in s["chain_to_spec"]:
            node = node.add(f"{step['type']}  [dim](by {step['producer']}, depth {step['depth']})[/dim]")
        console.print(tree)
    for spec in s["specs_drafted"]:
        console.print(f"[green]Spec drafted[/green]: {spec['title']} (theme {spec['theme']}, "
                      f"{spec['feedback_count']} feedback items, {spec['evidence']} quotes, model {spec['model']})")
    for d in s["duplicates"]:
        console.print(f"[yellow]Duplicate[/yellow]: \"{d['feedback']}\" ~ \"{d['duplicate_of']}\" "
                      f"({d['similarity']:.2f})")
    notes = Table(title="Notifications (normal and above)", title_justify="left")
    for c in ("importance", "status", "text"):
        notes.add_column(c)
    for n in s["notifications"]:
        notes.add_row(n["importance"], n["status"], n["text"])
    console.print(notes)
    render_spec_quality(console, s)
    render_digests(console, s)


def render_spec_quality(console: Console, s: dict[str, Any]) -> None:
    for q in s.get("spec_quality", []):
        console.print(f"[green]Spec quality[/green]: {q['title']} v{q['version']} scored [bold]{q['score']}/100[/bold] "
                      f"(model {q['model']})")
        for fix in q["fixes"]:
            console.print(f"  [dim]fix:[/dim] {fix}")


def render_digests(console: Console, s: dict[str, Any]) -> None:
    for d in s.get("digests", []):
        console.print(Panel(Text(d["text"]), title=f"Digest on clock.tick: {d['items']} items, {d['status']}",
                            title_align="left"))
