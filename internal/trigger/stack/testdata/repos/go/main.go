// Command greet prints a greeting.
package main

import "os"

func greeting(name string) string {
	if name == "" {
		name = "world"
	}
	return "hello, " + name
}

func main() {
	name := ""
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	os.Stdout.WriteString(greeting(name) + "\n")
}
