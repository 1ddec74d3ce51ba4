"""Scheduler tasks, calendar groups, the heartbeat and workflow jobs."""

from __future__ import annotations
