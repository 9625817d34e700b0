"""SIP signalling (aiosipua: transactions, dialogs, SDP offer/answer) and the dial-in gateway; the calls' RTP is in
:mod:`bridge.rtp`, on the media loop."""
