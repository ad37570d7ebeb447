"""Adapters: each translates one harness's wire format into a :class:`~pi_mesh_plugin.records.ToolCall`
or a tool call, asks the core (:func:`pi_mesh_plugin.host.decide`), and translates the answer back.
They decide nothing themselves.

``hooks/``       one process per tool call: ``pi-mesh hook claude-code|codex|gemini`` and the git pre-commit hook
``servers/``     long-lived: the Pi sidecar (``pi-mesh serve``) and the MCP server (``pi-mesh mcp``)
``installers/``  ``pi-mesh install ...``: harness settings, the Pi extension (``installers/pi_extension/``), git hooks
"""
