"""autotrader.gui."""
