"""Operator queries: events, replay, agent health, metrics and offline analysis."""
