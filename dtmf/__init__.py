"""Keypad signalling: in-band tone detection and generation (ITU-T Q.23/Q.24), RFC 4733 and SIP INFO event
merging, and the code-entry state machine. Pure numpy, no I/O; built by the DTMF issue."""
