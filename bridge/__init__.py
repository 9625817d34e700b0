"""Call legs and the media clock: the ``Leg`` protocol, SIP legs (baresip-python, kept behind ``bridge/sip/``),
WebRTC legs (aiortc), voice prompts and the engine that ticks every room each 20 ms; built by the phone issue."""
