"""autotrader.engine."""
