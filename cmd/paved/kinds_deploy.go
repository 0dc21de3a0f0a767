package main

// deployBuiltins is the deploy: stage kind (internal/deploy).
func deployBuiltins() []builtin { return nil }
