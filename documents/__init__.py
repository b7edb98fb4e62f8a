"""Agreement drafts, rendering, signing, verification and court filing (see their own issues)."""
