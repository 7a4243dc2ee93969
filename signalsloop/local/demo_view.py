"""Rendering the demo's summary for a person (rich tables)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
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
    console.print(Panel.fit("[bold]SignalsLoop demo: Tidewater feedback, processed by every agent[/bold]"))
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
    render_chain(console, s)
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


def render_chain(console: Console, s: dict[str, Any]) -> None:
    """One post's chain: to the stall alert when something stalled, else to the drafted spec."""
    chain, title = s.get("chain_to_stall_alert"), "from a post to a stall alert"
    if not chain:
        chain, title = s["chain_to_spec"], "from feedback.created to spec.auto_drafted"
    if not chain:
        return
    tree = Tree(f"[bold]One feedback item, {title}[/bold]")
    node = tree
    for step in chain:
        depth = f", depth {step['depth']}" if step["depth"] is not None else ""
        note = f": {escape(step['note'])}" if step.get("note") else ""
        node = node.add(f"{step['type']}  [dim](by {step['producer']}{depth}){note}[/dim]")
    console.print(tree)


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
    render_phase3(console, s)
def render_phase3(console: Console, s: dict[str, Any]) -> None:
    """Competitors, engagement and the roadmap (time moved on by clock.tick events)."""
    mentions = Table(title="Competitor mentions", title_justify="left")
    for c in ("competitor", "switching", "sentiment", "quote"):
        mentions.add_column(c)
    for m in s["competitor_mentions"]:
        mentions.add_row(m["competitor"], "yes" if m["switching_intent"] else "no", str(m["sentiment"]), m["quote"])
    console.print(mentions)
    for (competitor, feature), n in Counter(map(tuple, s["competitor_features"])).items():
        console.print(f"[cyan]Competitor feature[/cyan]: {competitor} has {feature} ({n} feedback items)")
    for t in s["competitive_threats"]:
        console.print(f"[red]Competitive threat[/red]: {t['competitor']}, {t['mentions']} mentions with switching "
                      f"intent or negative sentiment this week (threshold {t['threshold']})")
    engaged, at_risk = s["users_engaged"], s["users_at_risk"]
    console.print(f"[green]Users engaged[/green]: {len(engaged)}, the last one {engaged[-1] if engaged else '-'} "
                  "(after the clock moved on)")
    silent = f"{at_risk[0]['silent_days']:.0f} days silent" if at_risk else ""
    console.print(f"[yellow]Users at risk[/yellow]: {len(at_risk)} engaged users {silent}, e.g. "
                  f"{', '.join(u['user'] for u in at_risk[:3])}")
    roadmap = Table(title="Roadmap", title_justify="left")
    for c in ("item", "status", "target date", "stalled", "stalls"):
        roadmap.add_column(c)
    for r in s["roadmap"]:
        roadmap.add_row(r["title"], r["status"], str(r["target_date"]), str(r["stall_reason"] or "-"), str(r["stalls"]))
    console.print(roadmap)
    for e in s["roadmap_stalled"]:
        console.print(f"[red]Roadmap stalled[/red]: {e['title']} ({e['reason']}, {e['idle_days']:.0f} days idle)")
