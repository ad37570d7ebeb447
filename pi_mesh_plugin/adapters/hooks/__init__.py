"""Per-call hook commands: read one harness event, build a ToolCall, ask the core, print its answer.

Only what the guard path needs is imported here (tests/test_hooks.py holds the import budget)."""
