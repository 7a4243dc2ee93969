import pytest


@pytest.fixture(autouse=True)
def _loopback_only(no_proxy: None) -> None:
    """Every test here talks to a fake server on loopback."""
