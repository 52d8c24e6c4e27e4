"""autotrader.domain."""
