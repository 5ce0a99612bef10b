"""mmsearch."""
