"""Pure audio math on numpy arrays: frame format, resampling, voice activity, N-1 mixing, top-N, limiter.
No I/O, no asyncio; built by the mixer issue."""
