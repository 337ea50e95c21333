"""Rendering: an avatar from one photo, its face rig, animation and the render stage."""
