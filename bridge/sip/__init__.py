"""SIP legs and the dial-in gateway, on baresip-python (pinned; kept behind this package: nothing else imports it)."""
