"""trustrl network side."""
