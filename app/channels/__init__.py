"""Channels: one module per medium behind one interface (:mod:`app.channels.base`),
registered in :mod:`app.channels.registry`."""
