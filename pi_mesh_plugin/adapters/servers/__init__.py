"""Long-lived servers: the Pi sidecar (JSON lines on stdio) and the MCP server, sharing one tool renderer."""
