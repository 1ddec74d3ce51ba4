"""Valid messages for tests that need any message at all: a control message, a HEARTBEAT_GAP."""

from __future__ import annotations

import uuid


def control_message(state: str = "OPEN", window_id: int = 1, **overrides) -> dict:
    finished = state in ("COMPLETED", "RECOVERED")
    message = {
        "uuid": str(uuid.uuid4()),
        "eventMessage": f"GL_DAILY (acme): window {window_id} is {state}",
        "eventMajor": "BATCHING",
        "eventMinor": "GL_DAILY",
        "exceptionFlag": "N" if finished else "Y",
        "exceptionType": "Business Exception",
        "exceptionName": state,
        "exceptionArgument": "Target Trigger" if state == "COMPLETED" else "gl_lines",
        "entity": "ledger",
        "version": "1",
        "subEntity": {"workflow": "post_gl"},
        "retryCount": 0,
        "extractStartTimeStamp": "2026-03-02 00:00:00",
        "extractEndTimeStamp": "2026-03-03 00:00:00",
        "eventTimeStamp": "2026-03-03 01:00:00",
        "btch_dtl": {
            "state": state,
            "tenant": "acme",
            "config": "GL_DAILY",
            "window_id": window_id,
            "window_start": "2026-03-02T00:00:00Z",
            "window_end": "2026-03-03T00:00:00Z",
            "sla": "2026-03-03T02:00:00Z",
            "missing_sources": [] if finished else ["gl_lines"],
            "received": 1,
            "expected": 2,
        },
    }
    message.update(overrides)
    return message


GAP = "HEARTBEAT_GAP"


def gap_message(seq: int) -> dict:
    return {
        "uuid": str(uuid.uuid4()),
        "eventMessage": f"the portal was blind (gap {seq})",
        "eventMajor": "HEARTBEAT",
        "eventMinor": GAP,
        "exceptionFlag": "Y",
        "exceptionType": "System Error",
        "exceptionName": GAP,
        "exceptionArgument": "",
        "entity": "portal",
        "version": "1",
        "eventTimeStamp": "2026-03-02 10:00:00",
        "heartbeat": {
            "last_tick_at": "2026-03-02T09:00:00Z",
            "resumed_at": "2026-03-02T10:00:00Z",
            "blind_seconds": seq,
            "interval_seconds": 60,
            "event": "E_Heartbeat",
        },
    }
