"""RTP for the SIP legs in the bridge's own loop: packets, G.711, jitter buffers, RTCP (RFC 3550, ITU-T G.711)."""
