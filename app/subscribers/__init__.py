"""Subscribers in control (issue 12): preferences, the /me API, home and manage pages."""
