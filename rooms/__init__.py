"""Live sessions: lobby, joint session, caucuses, chat and the media relay (see its own issue)."""
