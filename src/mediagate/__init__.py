"""mediagate: a self-hosted media upload gateway speaking UPYUN, Wantu and ImageX."""

__version__ = "0.1.0"
