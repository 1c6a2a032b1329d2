"""clvtool: customer lifetime value from order and marketing-spend files."""

__version__ = "0.1.0"
