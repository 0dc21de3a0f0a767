def slug(t): return "-".join(t.lower().split())
