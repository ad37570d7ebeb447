"""`pi-mesh install ...`: merge our hooks into each harness's settings, copy the Pi extension, write git hooks."""
