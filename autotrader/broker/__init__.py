"""autotrader.broker."""
