package main

// gateBuiltins are the gate/ stage kinds (internal/gate).
func gateBuiltins() []builtin { return nil }
