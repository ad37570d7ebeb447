"""Adapters: each translates one harness's wire format into a :class:`~pi_mesh_plugin.records.ToolCall`
or a tool call, asks the core, and translates the answer back.  They decide nothing themselves."""
