"""Test instruments and pytest fixtures for credbroker users."""
