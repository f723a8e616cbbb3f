"""Adapters: a typed boto3 client in, a domain dataclass out. Each AWS read is written here once."""
