"""Test support: launchers for real servers (private instances on free loopback ports)."""
