"""How the dashboard names projects: slugs are unique per owner, so an
operator may see two owners' projects with the same name and slug."""

from __future__ import annotations

from uuid import UUID

from functions.dashboard.layout import project_names


def test_projects_are_told_apart_by_name_then_slug_then_id() -> None:
    a, b, c, d = (UUID(int=n << 100) for n in (0xA, 0xB, 0xC, 0xD))
    names = project_names([{"id": a, "name": "Acme", "slug": "acme"}, {"id": b, "name": "Acme", "slug": "acme"},
                           {"id": c, "name": "Acme", "slug": "acme-eu"}, {"id": d, "name": "Solo", "slug": "solo"}])
    assert names == {str(a): f"Acme (acme, {str(a)[:8]})", str(b): f"Acme (acme, {str(b)[:8]})",
                     str(c): "Acme (acme-eu)", str(d): "Solo"}
