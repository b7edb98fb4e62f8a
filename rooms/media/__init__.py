"""The media relay (SFU): forwards each participant's encoded audio and video to the others."""

from rooms.media.relay import MediaRelay

__all__ = ["MediaRelay"]
