"""Operator tooling for SignalsLoop: migrations, the local relay, dev stack, demo, CLI."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
