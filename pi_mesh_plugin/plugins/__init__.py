"""Built-in plugins.  :mod:`.mesh` is the mesh itself, registered through the same hooks third parties use."""
