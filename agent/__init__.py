"""pos-agent: the receipt-signing daemon for Greek cash registers."""

__version__ = "0.1.0"
# When the package was built, in seconds since the epoch (packaging/deb/build stamps it with the
# version); 0 in a source checkout. The fleet's version-lag alert orders versions by it: Debian
# version strings do not sort in PromQL.
__build_time__ = 0
