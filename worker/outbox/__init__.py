"""The outbox pipeline: one for every channel (SPEC §7, §11). Start at
:mod:`worker.outbox.pipeline`."""
