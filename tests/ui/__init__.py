"""Kernel-side tests of cam_widget.ui (no browser)."""
