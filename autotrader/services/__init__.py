"""autotrader.services."""
