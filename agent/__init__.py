"""pos-agent: the receipt-signing daemon for Greek cash registers."""

__version__ = "0.1.0"
