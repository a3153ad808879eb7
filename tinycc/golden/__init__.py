"""Integer reference ("golden") arithmetic: numpy mirrors of the C runtime, bit for bit."""
