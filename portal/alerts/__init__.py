"""Alerts to people (DOMAIN §7): episodes, channels, rules, and the watch on the portal's own processes.

A kernel package: the engines call its services where their conditions change; it imports no engine.
"""
